//! Each simulated project is a real PostgreSQL database. This module creates and bootstraps
//! them, and runs `database/query` SQL the way the vendor does.

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::pg;

/// Create database `name` unless it exists, then run the Supabase bootstrap in it (idempotent,
/// so a provisioning interrupted by a restart is simply run again). Returns its URL.
pub async fn ensure_database(server_url: &str, name: &str) -> Result<String> {
    let admin = pg::connect(server_url).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .with_context(|| format!("looking up database {name}"))?
        .is_some();
    drop(admin);
    let url = if exists {
        pg::with_database(server_url, name)?
    } else {
        match pg::create_database(server_url, name).await {
            Ok(url) => url,
            // Lost a race with another creator of the same name: fine, it exists now.
            Err(e) if format!("{e:#}").contains("already exists") => {
                pg::with_database(server_url, name)?
            }
            Err(e) => return Err(e),
        }
    };
    let db = pg::connect(&url).await?;
    db.batch_execute(pg::SUPABASE_BOOTSTRAP)
        .await
        .with_context(|| format!("bootstrapping database {name}"))?;
    Ok(url)
}

/// A failed query, with the message formatted like the vendor's (`ERROR:  <code>: <text>`).
#[derive(Debug)]
pub struct QueryError {
    pub message: String,
}

impl QueryError {
    fn from_pg(e: tokio_postgres::Error) -> QueryError {
        match e.as_db_error() {
            Some(db) => QueryError {
                message: format!(
                    "Failed to run sql query: ERROR:  {}: {}",
                    db.code().code(),
                    db.message()
                ),
            },
            None => QueryError {
                message: format!("Failed to run sql query: {e}"),
            },
        }
    }
}

/// Run `query` on the project database at `url` and return the rows of its (last) result
/// set as a JSON array of objects, like the vendor (whose driver types the values).
///
/// - A single statement runs through the extended protocol; rows are rendered by Postgres
///   itself (`json_agg`), so numbers, booleans and JSON keep their types.
/// - A multi-statement query is one transaction, as with the vendor: it is split like the
///   Supabase CLI splits migrations, run inside `BEGIN … COMMIT`, and the last statement is
///   run as a single one (typed rows). If the splitter finds fewer than two statements where
///   Postgres sees several, the text runs as one simple-protocol query (still one implicit
///   transaction; values are then Postgres' text forms).
/// - `read_only` makes the session read-only.
pub async fn run_query(
    url: &str,
    query: &str,
    params: &[Value],
    read_only: bool,
) -> std::result::Result<Value, QueryError> {
    let client = pg::connect(url).await.map_err(|e| QueryError {
        message: format!("Failed to run sql query: {e:#}"),
    })?;
    if read_only {
        // Session-wide rather than an explicit transaction: a failed prepare below would
        // otherwise abort that transaction before the real run.
        client
            .batch_execute("SET default_transaction_read_only = on")
            .await
            .map_err(QueryError::from_pg)?;
    }
    match client.prepare(query).await {
        Ok(stmt) => run_single(&client, query, &stmt, params, false).await,
        // Postgres refuses to prepare several statements at once; that is how a
        // multi-statement query is recognised.
        Err(e) if is_multi_statement(&e) => {
            if !params.is_empty() {
                return Err(QueryError {
                    message: "Failed to run sql query: parameters can only be used with a single statement"
                        .into(),
                });
            }
            run_multi(&client, query).await
        }
        Err(e) => Err(QueryError::from_pg(e)),
    }
}

async fn run_multi(client: &Client, query: &str) -> std::result::Result<Value, QueryError> {
    let statements = crate::migrate::split::split_statements(query);
    let Some((last, first)) = statements.split_last().filter(|(_, f)| !f.is_empty()) else {
        return simple_rows(client, query).await;
    };
    client
        .batch_execute("BEGIN")
        .await
        .map_err(QueryError::from_pg)?;
    let outcome = async {
        for s in first {
            client.batch_execute(s).await.map_err(QueryError::from_pg)?;
        }
        let stmt = client.prepare(last).await.map_err(QueryError::from_pg)?;
        run_single(client, last, &stmt, &[], true).await
    }
    .await;
    match outcome {
        Ok(rows) => {
            // A script may have ended the transaction itself (`…; COMMIT;`): then this COMMIT
            // only warns.
            client
                .batch_execute("COMMIT")
                .await
                .map_err(QueryError::from_pg)?;
            Ok(rows)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Run one prepared statement. `in_tx`: inside our explicit transaction, where a failed
/// prepare would abort it, so the JSON wrapper is tried under a savepoint.
async fn run_single(
    client: &Client,
    query: &str,
    stmt: &tokio_postgres::Statement,
    params: &[Value],
    in_tx: bool,
) -> std::result::Result<Value, QueryError> {
    let bound = bind_params(stmt.params(), params)?;
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref() as _).collect();
    if stmt.columns().is_empty() {
        client
            .execute(stmt, &refs)
            .await
            .map_err(QueryError::from_pg)?;
        return Ok(Value::Array(vec![]));
    }
    // Let Postgres render the rows as JSON. A data-modifying statement with RETURNING works
    // inside WITH as well; anything that cannot be wrapped (SHOW, EXPLAIN, a trailing
    // comment...) is converted by column type instead.
    let trimmed = query.trim().trim_end_matches(';').trim_end();
    let wrapped = format!(
        "WITH __intelli_sim_q AS ({trimmed}\n) SELECT coalesce(json_agg(__intelli_sim_q), '[]'::json)::text FROM __intelli_sim_q"
    );
    let savepoint = in_tx
        && client
            .batch_execute("SAVEPOINT __intelli_sim_wrap")
            .await
            .is_ok();
    match client.prepare(&wrapped).await {
        Ok(wstmt) => {
            let rows = client
                .query(&wstmt, &refs)
                .await
                .map_err(QueryError::from_pg)?;
            let text: String = rows
                .first()
                .and_then(|r| r.try_get::<_, String>(0).ok())
                .unwrap_or_else(|| "[]".into());
            serde_json::from_str(&text).map_err(|e| QueryError {
                message: format!("Failed to run sql query: unreadable result: {e}"),
            })
        }
        Err(_) => {
            if savepoint {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT __intelli_sim_wrap")
                    .await
                    .map_err(QueryError::from_pg)?;
            }
            let rows = client
                .query(stmt, &refs)
                .await
                .map_err(QueryError::from_pg)?;
            Ok(Value::Array(rows.iter().map(row_to_json).collect()))
        }
    }
}

/// A row as a JSON object, by column type (used only when Postgres cannot render it).
fn row_to_json(row: &tokio_postgres::Row) -> Value {
    let mut obj = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = match *t {
            Type::BOOL => cell::<bool>(row, i),
            Type::INT2 => cell::<i16>(row, i),
            Type::INT4 => cell::<i32>(row, i),
            Type::INT8 => cell::<i64>(row, i),
            Type::FLOAT4 => cell::<f32>(row, i),
            Type::FLOAT8 => cell::<f64>(row, i),
            Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => cell::<Vec<String>>(row, i),
            _ => match row.try_get::<_, Option<String>>(i) {
                Ok(v) => v.map(Value::from),
                Err(_) => Some(Value::String(format!("<unsupported type {t}>"))),
            },
        };
        obj.insert(col.name().to_owned(), v.unwrap_or(Value::Null));
    }
    Value::Object(obj)
}

/// One column of `row` as JSON; NULL and values that are not a `T` give `None`.
fn cell<'a, T>(row: &'a tokio_postgres::Row, i: usize) -> Option<Value>
where
    T: tokio_postgres::types::FromSql<'a> + Into<Value>,
{
    row.try_get::<_, Option<T>>(i)
        .ok()
        .flatten()
        .map(Into::into)
}

fn is_multi_statement(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| d.message().contains("cannot insert multiple commands"))
}

async fn simple_rows(client: &Client, query: &str) -> std::result::Result<Value, QueryError> {
    let msgs = client
        .simple_query(query)
        .await
        .map_err(QueryError::from_pg)?;
    // Keep only the rows of the last statement that produced a result set.
    let mut current: Vec<Value> = Vec::new();
    let mut last: Vec<Value> = Vec::new();
    let mut had_rows = false;
    for m in msgs {
        match m {
            SimpleQueryMessage::Row(row) => {
                let mut obj = Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let v = row
                        .get(i)
                        .map(|s| Value::String(s.to_owned()))
                        .unwrap_or(Value::Null);
                    obj.insert(col.name().to_owned(), v);
                }
                current.push(Value::Object(obj));
                had_rows = true;
            }
            SimpleQueryMessage::RowDescription(_) => {
                current.clear();
                had_rows = true;
            }
            SimpleQueryMessage::CommandComplete(_) => {
                if had_rows {
                    last = std::mem::take(&mut current);
                }
                had_rows = false;
            }
            _ => {}
        }
    }
    Ok(Value::Array(last))
}

/// Bind JSON parameters to the types Postgres inferred for `$1..$n`.
fn bind_params(
    types: &[Type],
    params: &[Value],
) -> std::result::Result<Vec<Box<dyn ToSql + Sync + Send>>, QueryError> {
    if types.len() != params.len() {
        return Err(QueryError {
            message: format!(
                "Failed to run sql query: the query has {} parameter(s) but {} were given",
                types.len(),
                params.len()
            ),
        });
    }
    let bad = |i: usize, t: &Type| QueryError {
        message: format!(
            "Failed to run sql query: parameter ${} cannot be converted to {t}",
            i + 1
        ),
    };
    let mut out: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(params.len());
    for (i, (t, v)) in types.iter().zip(params).enumerate() {
        let b: Box<dyn ToSql + Sync + Send> = match (t, v) {
            (_, Value::Null) => Box::new(SqlNull),
            (&Type::BOOL, Value::Bool(b)) => Box::new(*b),
            (&Type::INT2, Value::Number(n)) => Box::new(
                n.as_i64()
                    .and_then(|x| i16::try_from(x).ok())
                    .ok_or_else(|| bad(i, t))?,
            ),
            (&Type::INT4, Value::Number(n)) => Box::new(
                n.as_i64()
                    .and_then(|x| i32::try_from(x).ok())
                    .ok_or_else(|| bad(i, t))?,
            ),
            (&Type::INT8, Value::Number(n)) => Box::new(n.as_i64().ok_or_else(|| bad(i, t))?),
            (&Type::FLOAT4, Value::Number(n)) => {
                Box::new(n.as_f64().ok_or_else(|| bad(i, t))? as f32)
            }
            (&Type::FLOAT8, Value::Number(n)) => Box::new(n.as_f64().ok_or_else(|| bad(i, t))?),
            (
                &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN,
                Value::String(s),
            ) => Box::new(s.clone()),
            (&Type::TEXT | &Type::VARCHAR, other) => Box::new(other.to_string()),
            (&Type::TEXT_ARRAY | &Type::VARCHAR_ARRAY, Value::Array(items)) => Box::new(
                items
                    .iter()
                    .map(|x| match x {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(bad(i, t)),
                    })
                    .collect::<std::result::Result<Vec<String>, _>>()?,
            ),
            _ => return Err(bad(i, t)),
        };
        out.push(b);
    }
    Ok(out)
}

/// SQL NULL of whatever type the parameter has.
#[derive(Debug)]
struct SqlNull;

impl ToSql for SqlNull {
    fn to_sql(
        &self,
        _ty: &Type,
        _out: &mut tokio_postgres::types::private::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        Ok(tokio_postgres::types::IsNull::Yes)
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}
