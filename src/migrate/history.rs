//! What the migration history says versus what the files say: pending versions and problems.
//! Pure functions over observed rows; the rules follow the Supabase CLI's `db push`, plus
//! drift detection, which the CLI does not have.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::MigrationFile;
use super::split::{canonical, split_statements};

/// One row of `supabase_migrations.schema_migrations` as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedMigration {
    pub version: String,
    pub name: Option<String>,
    /// Hex SHA-256 of `array_to_string(statements, E'\n')`; `None` when the row has no statements.
    pub statements_sha256: Option<String>,
    /// The stored statements, fetched only when the digest differs from the file's (so that a
    /// different split of the same SQL is not mistaken for drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements: Option<Vec<String>>,
}

/// Why a client's migrations cannot proceed: each is an error for that client only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MigrationProblem {
    /// A history row without a file: the database is ahead of this repository.
    MissingFile { version: String },
    /// A file older than the newest applied version that was never applied.
    OutOfOrder {
        version: String,
        newest_applied: String,
    },
    /// An applied migration whose file has changed since.
    Drift { version: String, file: String },
}

impl std::fmt::Display for MigrationProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationProblem::MissingFile { version } => write!(
                f,
                "migration {version} is recorded in the database but has no file in the migrations directory \
                 (restore the file, or remove the history row with `supabase migration repair --status reverted {version}`)"
            ),
            MigrationProblem::OutOfOrder {
                version,
                newest_applied,
            } => write!(
                f,
                "migration {version} is older than the newest applied migration {newest_applied} and was never applied; \
                 rename it with a newer timestamp, or pass --include-all to apply it out of order"
            ),
            MigrationProblem::Drift { version, file } => write!(
                f,
                "migration {version} was applied, but {file} has changed since; applied migrations must not be edited \
                 (restore the file and put the change in a new migration)"
            ),
        }
    }
}

/// The statements intelli records for `file`, and the digest it compares history rows with.
pub fn statements_of(file: &MigrationFile) -> Vec<String> {
    split_statements(&file.sql)
}

pub fn statements_digest(statements: &[String]) -> String {
    hex::encode(Sha256::digest(statements.join("\n").as_bytes()))
}

/// The versions still to apply, in order, or every problem that forbids applying.
pub fn pending(
    files: &[MigrationFile],
    applied: &[AppliedMigration],
    include_all: bool,
) -> Result<Vec<String>, Vec<MigrationProblem>> {
    let mut problems = Vec::new();
    for row in applied {
        match files.iter().find(|f| f.version == row.version) {
            None => problems.push(MigrationProblem::MissingFile {
                version: row.version.clone(),
            }),
            Some(file) => {
                if is_drifted(file, row) {
                    problems.push(MigrationProblem::Drift {
                        version: row.version.clone(),
                        file: file.path.display().to_string(),
                    });
                }
            }
        }
    }
    let newest = applied.iter().map(|a| a.version.as_str()).max();
    let mut todo = Vec::new();
    for f in files {
        if applied.iter().any(|a| a.version == f.version) {
            continue;
        }
        if let Some(newest) = newest
            && f.version.as_str() < newest
            && !include_all
        {
            problems.push(MigrationProblem::OutOfOrder {
                version: f.version.clone(),
                newest_applied: newest.to_string(),
            });
            continue;
        }
        todo.push(f.version.clone());
    }
    if problems.is_empty() {
        Ok(todo)
    } else {
        Err(problems)
    }
}

/// Whether `row` records something other than what `file` says now. Rows without statements
/// (written by old tools) cannot be checked and are trusted.
pub fn is_drifted(file: &MigrationFile, row: &AppliedMigration) -> bool {
    let Some(stored) = &row.statements_sha256 else {
        return false;
    };
    if *stored == statements_digest(&statements_of(file)) {
        return false;
    }
    match &row.statements {
        Some(statements) => canonical(&statements.join("\n")) != canonical(&file.sql),
        // Digest differs and the statements were not fetched: treat as drift to be safe;
        // observe fetches them whenever the digest differs, so this is only reached on misuse.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(v: &str, sql: &str) -> MigrationFile {
        MigrationFile {
            version: v.into(),
            name: format!("m{v}"),
            path: PathBuf::from(format!("migrations/{v}_m{v}.sql")),
            sql: sql.into(),
        }
    }
    fn row(f: &MigrationFile) -> AppliedMigration {
        AppliedMigration {
            version: f.version.clone(),
            name: Some(f.name.clone()),
            statements_sha256: Some(statements_digest(&statements_of(f))),
            statements: None,
        }
    }

    #[test]
    fn pending_in_order_after_the_applied_ones() {
        let files = [
            file("1", "select 1;"),
            file("2", "select 2;"),
            file("3", "select 3;"),
        ];
        assert_eq!(
            pending(&files, &[row(&files[0])], false),
            Ok(vec!["2".into(), "3".into()])
        );
        assert_eq!(
            pending(&files, &[], false),
            Ok(vec!["1".into(), "2".into(), "3".into()])
        );
    }

    #[test]
    fn refuses_out_of_order_unless_asked() {
        let files = [
            file("1", "select 1;"),
            file("2", "select 2;"),
            file("3", "select 3;"),
        ];
        let applied = [row(&files[0]), row(&files[2])];
        assert_eq!(
            pending(&files, &applied, false),
            Err(vec![MigrationProblem::OutOfOrder {
                version: "2".into(),
                newest_applied: "3".into()
            }])
        );
        assert_eq!(pending(&files, &applied, true), Ok(vec!["2".into()]));
    }

    #[test]
    fn history_row_without_file_is_an_error() {
        let files = [file("1", "select 1;")];
        let ghost = AppliedMigration {
            version: "0".into(),
            name: None,
            statements_sha256: None,
            statements: None,
        };
        assert_eq!(
            pending(&files, &[ghost, row(&files[0])], false),
            Err(vec![MigrationProblem::MissingFile {
                version: "0".into()
            }])
        );
    }

    #[test]
    fn drift_is_content_not_layout() {
        let f = file("1", "create table t (x int);");
        let mut r = row(&f);
        // Same SQL split differently by another tool: fetched statements compare canonically.
        r.statements_sha256 = Some("different".into());
        r.statements = Some(vec!["create table t (\n x int\n)".into()]);
        assert!(!is_drifted(&f, &r));
        r.statements = Some(vec!["create table t (x bigint)".into()]);
        assert!(is_drifted(&f, &r));
        assert!(matches!(
            pending(std::slice::from_ref(&f), &[r], false),
            Err(p) if matches!(p[0], MigrationProblem::Drift { .. })
        ));
    }
}
