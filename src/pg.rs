//! Finding a PostgreSQL server and managing throwaway databases on it.
//!
//! Used by the simulator (one database per simulated project), the sandbox and the tests.
//! Owns: connection strings and database lifecycle. Must not: know about migrations or fleets.

use anyhow::{Context, Result, bail};
use tokio_postgres::{Client, NoTls};

pub mod tls;

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

/// Connect, driving the connection on a background task, with the TLS the URL asks for
/// (`sslmode`, `sslrootcert`: see [`tls`]). The error says where it tried and what to do,
/// without echoing a password that may be in the URL.
pub async fn connect(url: &str) -> Result<Client> {
    let spec = tls::parse(url).with_context(|| format!("connecting to {}", redact(url)))?;
    let mut config = spec.config.clone();
    config.ssl_mode(tls::pg_mode(spec.mode));
    let tls_connector =
        tls::connector(&spec).with_context(|| format!("connecting to {}", redact(url)))?;
    let connected = match tls_connector {
        None => config.connect(NoTls).await.map(|(client, conn)| {
            spawn_connection(conn);
            client
        }),
        Some(tls) => config.connect(tls).await.map(|(client, conn)| {
            spawn_connection(conn);
            client
        }),
    };
    connected.map_err(|e| match tls::certificate_error(&e) {
        Some(problem) => anyhow::Error::new(e).context(format!(
            "the TLS certificate of the PostgreSQL server at {} was rejected ({problem}): with \
             sslmode=verify-full it must be signed by a CA in sslrootcert (or in the system's \
             store when sslrootcert is not given) and name the host",
            redact(url)
        )),
        None => anyhow::Error::new(e).context(format!(
            "cannot connect to PostgreSQL at {} — start a server (Debian: apt-get install postgresql) \
             or set DATABASE_URL",
            redact(url)
        )),
    })
}

fn spawn_connection<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        // The error, if any, surfaces on the next query through the client.
        let _ = conn.await;
    });
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
    let sql = format!("CREATE DATABASE \"{name}\"");
    admin_execute(server_url, &sql, || format!("creating database {name}")).await?;
    with_database(server_url, name)
}

/// Drop database `name` if it exists, disconnecting its sessions.
pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
    check_db_name(name)?;
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    admin_execute(server_url, &sql, || format!("dropping database {name}")).await
}

/// Runs `sql` on a new connection to the server's maintenance database (CREATE and DROP
/// DATABASE cannot run inside the database they name).
async fn admin_execute(server_url: &str, sql: &str, what: impl Fn() -> String) -> Result<()> {
    let admin = connect(server_url).await?;
    admin.batch_execute(sql).await.with_context(what)
}

/// The SQL that gives plain PostgreSQL what a Supabase project provides (roles, `auth`,
/// `storage`). Idempotent.
pub const SUPABASE_BOOTSTRAP: &str = include_str!("../sql/supabase-bootstrap.sql");

/// A PostgreSQL server this process started (for the sandbox) and must stop.
pub struct LocalServer {
    pg_ctl: std::path::PathBuf,
    data: std::path::PathBuf,
    run_as_postgres: bool,
    port: u16,
}

impl LocalServer {
    /// The superuser's URL (trust authentication, plaintext: the server is on this machine).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stop the server (fast shutdown). Errors are ignored: the data directory stays valid.
    pub fn stop(self) {
        let _ = pg_command(&self.pg_ctl, self.run_as_postgres)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output();
    }
}

/// A server for the sandbox: `DATABASE_URL` when set, else one answering on 127.0.0.1:5432,
/// else a private cluster in `dir` started with the system's `initdb`/`pg_ctl` (kept across
/// runs so the sandbox's databases persist), else an error saying what to install.
/// `INTELLI_PG=throwaway` skips the first two, as in scripts/test.
pub async fn find_or_start(dir: &std::path::Path) -> Result<(String, Option<LocalServer>)> {
    let forced = std::env::var("INTELLI_PG").is_ok_and(|v| v == "throwaway");
    if !forced {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            connect(&url).await?;
            return Ok((url, None));
        }
        if connect(DEFAULT_URL).await.is_ok() {
            return Ok((DEFAULT_URL.to_string(), None));
        }
    }
    if find_pg_binary("initdb").is_none() || find_pg_binary("pg_ctl").is_none() {
        bail!(
            "no PostgreSQL server answers on 127.0.0.1:5432, DATABASE_URL is not set, and initdb/pg_ctl \
             were not found to start one: install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL"
        );
    }
    let server = start_cluster(dir, 55433, &[("max_connections", "200")])?;
    let url = server.url();
    Ok((url, Some(server)))
}

/// A private cluster with its data in `dir/pgdata`, listening on 127.0.0.1:`port` with trust
/// authentication, made with the system's `initdb` when absent and started with `pg_ctl`
/// (already running: used as is). `settings` are extra server settings (`-c name=value`),
/// e.g. `ssl=on` for the TLS tests. As root, everything runs as the `postgres` system user,
/// which then owns `dir`.
pub fn start_cluster(
    dir: &std::path::Path,
    port: u16,
    settings: &[(&str, &str)],
) -> Result<LocalServer> {
    let (Some(initdb), Some(pg_ctl)) = (find_pg_binary("initdb"), find_pg_binary("pg_ctl")) else {
        bail!(
            "initdb/pg_ctl were not found to start a PostgreSQL cluster: install PostgreSQL \
             (Debian: apt-get install postgresql)"
        );
    };
    // initdb refuses to run as root; the postgres system user is there wherever the package is.
    let as_root = is_root();
    let data = dir.join("pgdata");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if as_root {
        let _ = std::process::Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir)
            .status();
    }
    if !data.join("PG_VERSION").exists() {
        let out = pg_command(&initdb, as_root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let server = LocalServer {
        pg_ctl: pg_ctl.clone(),
        data: data.clone(),
        run_as_postgres: as_root,
        port,
    };
    // Left running by a run that was killed: use it, and stop it this time.
    let running = pg_command(&pg_ctl, as_root)
        .arg("-D")
        .arg(&data)
        .arg("status")
        .output()
        .is_ok_and(|o| o.status.success());
    if running {
        return Ok(server);
    }
    let log = dir.join("server.log");
    let mut options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1",
        dir.display()
    );
    for (name, value) in settings {
        options.push_str(&format!(" -c {name}={value}"));
    }
    let out = pg_command(&pg_ctl, as_root)
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .arg("-o")
        .arg(options)
        .args(["-w", "start"])
        .output()
        .context("running pg_ctl start")?;
    if !out.status.success() {
        bail!(
            "pg_ctl could not start PostgreSQL (see {}): {}",
            log.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(server)
}

fn pg_command(bin: &std::path::Path, as_postgres: bool) -> std::process::Command {
    if as_postgres {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `name` from PATH, else from Debian's versioned directories (newest first).
fn find_pg_binary(name: &str) -> Option<std::path::PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

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
