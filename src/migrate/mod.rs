//! The master mold's SQL: migration files in Supabase CLI naming, and the per-client seed.
//!
//! Owns: finding and ordering migration files, the seed's settings contract, applying both
//! over a direct PostgreSQL connection. The history table and drift detection are written the
//! Supabase CLI's way (see ARCHITECTURE.md) when the apply side lands.
//! Must not: decide *whether* to apply (that is `plan`), or know about HTTP.

pub mod exec;
pub mod history;
pub mod split;
pub mod sql;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fleet::ClientSpec;

/// One `migrations/<version>_<name>.sql` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The leading digits of the file name (a 14-digit UTC timestamp); compared as strings,
    /// like the Supabase CLI does.
    pub version: String,
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
}

/// Every migration in `dir`, in version order. Files that do not match `<digits>_<name>.sql`
/// are an error rather than silently skipped: a misnamed file would otherwise never be applied.
pub fn discover(dir: &Path) -> Result<Vec<MigrationFile>> {
    let mut out: Vec<MigrationFile> = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading migrations directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if file.starts_with('.') || file.eq_ignore_ascii_case("README.md") {
            continue;
        }
        let (version, name) = parse_file_name(file).with_context(|| {
            format!(
                "{}: expected <version>_<name>.sql, e.g. 20250101090000_create_tickets.sql",
                path.display()
            )
        })?;
        let sql = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if let Some(other) = out.iter().find(|m| m.version == version) {
            bail!(
                "{} and {} share version {version}; each migration needs its own version",
                other.path.display(),
                path.display()
            );
        }
        // Each file runs in one transaction with its history row; a file that ends or starts
        // transactions itself would commit the history apart from its SQL.
        if let Some(stmt) = split::split_statements(&sql)
            .iter()
            .find(|st| controls_transaction(st))
        {
            bail!(
                "{}: `{}` — migrations must not control transactions (intelli runs each file in one \
                 transaction with its history row)",
                path.display(),
                stmt.lines().next().unwrap_or("")
            );
        }
        out.push(MigrationFile {
            version,
            name,
            path,
            sql,
        });
    }
    out.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(out)
}

/// Whether a statement begins, ends or aborts a transaction.
fn controls_transaction(statement: &str) -> bool {
    let code: String = statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let first: Vec<String> = code
        .split_whitespace()
        .take(2)
        .map(|w| w.trim_end_matches(';').to_ascii_lowercase())
        .collect();
    match first.first().map(String::as_str) {
        Some("commit" | "rollback" | "abort" | "savepoint" | "release") => true,
        Some("end") => {
            first.len() == 1
                || matches!(
                    first.get(1).map(String::as_str),
                    Some("transaction" | "work")
                )
        }
        Some("begin") => {
            first.len() == 1
                || matches!(
                    first.get(1).map(String::as_str),
                    Some("transaction" | "work" | "isolation")
                )
        }
        Some("start") => first.get(1).map(String::as_str) == Some("transaction"),
        _ => false,
    }
}

fn parse_file_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".sql")?;
    let digits = stem.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (version, rest) = stem.split_at(digits);
    let name = rest.strip_prefix('_').unwrap_or(rest);
    Some((version.to_string(), name.to_string()))
}

/// The values the seed reads with `current_setting('intelli.<name>')`, in a fixed order.
/// Documented in migrations/README.md; adding one is a change to that contract.
pub fn seed_settings(client: &ClientSpec) -> Vec<(&'static str, String)> {
    vec![
        ("intelli.client_slug", client.slug.clone()),
        ("intelli.display_name", client.display_name.clone()),
        ("intelli.domain", client.domain.clone()),
        ("intelli.site_url", client.site_url.clone()),
    ]
}

/// Run `sql` in one transaction on a direct connection. Used for the bootstrap and migrations.
pub async fn run_in_transaction(db: &mut tokio_postgres::Client, sql: &str) -> Result<()> {
    let tx = db.transaction().await?;
    tx.batch_execute(sql).await?;
    tx.commit().await?;
    Ok(())
}

/// Run the seed in one transaction after binding its settings as parameters, so client values
/// never become SQL text.
pub async fn run_seed(
    db: &mut tokio_postgres::Client,
    seed_sql: &str,
    settings: &[(&str, String)],
) -> Result<()> {
    let tx = db.transaction().await?;
    for (name, value) in settings {
        tx.execute("select set_config($1, $2, true)", &[name, value])
            .await
            .with_context(|| format!("setting {name}"))?;
    }
    tx.batch_execute(seed_sql)
        .await
        .context("running the seed")?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            parse_file_name("20250101090000_create_tickets.sql"),
            Some(("20250101090000".into(), "create_tickets".into()))
        );
        assert_eq!(parse_file_name("create_tickets.sql"), None);
        assert!(controls_transaction("BEGIN"));
        assert!(controls_transaction("commit"));
        assert!(controls_transaction("-- done\nCOMMIT"));
        assert!(controls_transaction(
            "start transaction isolation level serializable"
        ));
        assert!(!controls_transaction(
            "create function f() returns int language plpgsql as $$ begin return 1; end $$"
        ));
        assert!(!controls_transaction("select 1"));
        assert_eq!(parse_file_name("20250101090000_x.txt"), None);
    }
}
