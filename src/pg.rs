//! Finding a PostgreSQL server and managing throwaway databases on it.
//!
//! Used by the simulator (one database per simulated project), the sandbox and the tests.
//! Owns: connection strings and database lifecycle. Must not: know about migrations or fleets.

use anyhow::{Context, Result, bail};
use tokio_postgres::{Client, NoTls};

/// The server the local PostgreSQL tooling expects when nothing else is said.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `DATABASE_URL` when set, else the local default server.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// `url` with its database name replaced by `dbname`.
pub fn with_database(url: &str, dbname: &str) -> Result<String> {
    let mut u = url::Url::parse(url).with_context(|| "DATABASE_URL is not a postgres:// URL")?;
    u.set_path(&format!("/{dbname}"));
    Ok(u.to_string())
}

/// Connect, driving the connection on a background task. The error says where it tried and
/// what to do, without echoing a password that may be in the URL.
pub async fn connect(url: &str) -> Result<Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .context("invalid PostgreSQL connection string")?;
    let (client, conn) = config.connect(NoTls).await.with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {} — start a server (Debian: apt-get install postgresql) \
             or set DATABASE_URL",
            redact(url)
        )
    })?;
    tokio::spawn(async move {
        // The error, if any, surfaces on the next query through the client.
        let _ = conn.await;
    });
    Ok(client)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable connection string>".into(),
    }
}

/// Whether `name` is safe to splice into `CREATE DATABASE` (identifiers cannot be bound).
fn check_db_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid database name {name:?}: use lowercase letters, digits and _ (at most 63)");
    }
    Ok(())
}

/// Create database `name` on the server at `server_url`; returns its URL.
pub async fn create_database(server_url: &str, name: &str) -> Result<String> {
    check_db_name(name)?;
    let admin = connect(server_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .with_context(|| format!("creating database {name}"))?;
    with_database(server_url, name)
}

/// Drop database `name` if it exists, disconnecting its sessions.
pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
    check_db_name(name)?;
    let admin = connect(server_url).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .with_context(|| format!("dropping database {name}"))?;
    Ok(())
}

/// The SQL that gives plain PostgreSQL what a Supabase project provides (roles, `auth`,
/// `storage`). Idempotent.
pub const SUPABASE_BOOTSTRAP: &str = include_str!("../sql/supabase-bootstrap.sql");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_swap_and_redaction() {
        let u = with_database("postgres://u:pw@h:5432/postgres?sslmode=disable", "x_1").unwrap();
        assert_eq!(u, "postgres://u:pw@h:5432/x_1?sslmode=disable");
        assert_eq!(redact(&u), "postgres://u:***@h:5432/x_1?sslmode=disable");
        assert!(check_db_name("Robert'); drop").is_err());
    }
}
