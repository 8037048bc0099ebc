//! The SQL texts intelli sends to a client database: observing history, applying one migration,
//! applying the seed. Each is one string, run as one implicit transaction, so the same text
//! works over the Management API's `database/query` and over a direct connection.
//!
//! Values are embedded with dollar quoting under a tag that does not occur in the value, so
//! no client value (quotes, backslashes, `$$`) can end its literal early, whatever
//! `standard_conforming_strings` says.

use super::MigrationFile;
use super::history::statements_of;

/// The history tables, created exactly as the Supabase CLI creates them, plus the CLI's seed
/// table. Idempotent.
pub const HISTORY_DDL: &str = "\
set local lock_timeout = '4s';
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
create table if not exists supabase_migrations.seed_files (path text not null primary key, hash text not null);
set local lock_timeout to default;
";

/// Serialises intelli's writes to one database: advisory locks are per database, and the
/// `xact` form is released by the transaction's end, whatever happens to the connection. Taken
/// first, before the history DDL: concurrent `create schema if not exists` can otherwise race
/// (found by `concurrent_appliers_never_apply_a_migration_twice`).
const LOCK: &str = "select pg_advisory_xact_lock(hashtext('intelli:schema_migrations'));\n";

/// `value` as a SQL string literal that cannot be broken out of.
pub fn literal(value: &str) -> String {
    let mut n = 0usize;
    loop {
        let tag = if n == 0 {
            "$q$".to_string()
        } else {
            format!("$q{n}$")
        };
        // The literal ends at the first occurrence of the tag after the opening one, so the
        // tag must not occur in the value, nor be formed by the value's end and the tag.
        let body_and_close = format!("{value}{tag}");
        if body_and_close.find(&tag) == Some(value.len()) {
            return format!("{tag}{body_and_close}");
        }
        n += 1;
    }
}

/// Which history tables exist (the CLI creates `seed_files` only when it seeds, and a database
/// never migrated has neither). Asked only when [`observe`] with both fails.
pub const HISTORY_TABLES: &str = "\
select to_regclass('supabase_migrations.schema_migrations') is not null as migrations,
       to_regclass('supabase_migrations.seed_files') is not null as seeds";

/// One query that returns the whole observed database state as a single JSON value in column
/// `state`: applied migrations (with a digest of their statements), seeds, and buckets. The
/// history table is read through `to_jsonb(row)` so that old tables without the `name` or
/// `statements` columns read as nulls instead of failing; a table that does not exist must be
/// left out (`with_migrations` / `with_seeds` false), see [`HISTORY_TABLES`].
pub fn observe(with_migrations: bool, with_seeds: bool) -> String {
    let migrations = if with_migrations {
        "coalesce((select json_agg(json_build_object(
      'version', m.version,
      'name', to_jsonb(m) ->> 'name',
      'statements_sha256', case when jsonb_typeof(to_jsonb(m) -> 'statements') = 'array'
          then encode(sha256(convert_to(coalesce((select string_agg(x, E'\\n' order by n)
            from jsonb_array_elements_text(to_jsonb(m) -> 'statements') with ordinality as t(x, n)), ''), 'UTF8')), 'hex')
          else null end)
    order by m.version) from supabase_migrations.schema_migrations m), '[]'::json)"
    } else {
        "'[]'::json"
    };
    let seeds = if with_seeds {
        "coalesce((select json_agg(json_build_object('path', path, 'hash', hash) order by path)
    from supabase_migrations.seed_files), '[]'::json)"
    } else {
        "'[]'::json"
    };
    format!(
        "select json_build_object(
  'migrations', {migrations},
  'seeds', {seeds},
  'buckets', coalesce((select json_agg(json_build_object(
      'id', id, 'public', public, 'file_size_limit', file_size_limit,
      'allowed_mime_types', allowed_mime_types) order by id) from storage.buckets), '[]'::json)
)::text as state"
    )
}

/// The stored statements of the given versions, for a canonical comparison when digests differ.
pub fn fetch_statements(versions: &[String]) -> String {
    let list: Vec<String> = versions.iter().map(|v| literal(v)).collect();
    format!(
        "select m.version, (to_jsonb(m) -> 'statements')::text as statements from supabase_migrations.schema_migrations m where m.version in ({}) order by m.version",
        list.join(", ")
    )
}

/// SQL that guards itself: it takes intelli's advisory lock, checks the history table and
/// records itself, all in one transaction, so sending it twice (after a lost answer or a 5xx)
/// applies it at most once (the second run raises [`ALREADY_APPLIED`]). Only this module makes
/// one, which is what lets `migrate::exec` re-send it ([`crate::http::Repeat::Guarded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardedSql(String);

impl GuardedSql {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Apply one migration file and record it, in one transaction. If another run recorded the same
/// version in the meantime, the transaction fails with `intelli: already applied` before the
/// file runs, so a migration can never run twice.
pub fn apply_migration(file: &MigrationFile) -> GuardedSql {
    apply_migrations(&[file])
}

/// Apply several migration files, in order, and record each, all in one transaction: one
/// request instead of one per file (a new client's whole history at once). Each file keeps
/// its own guard, so a version recorded meanwhile fails the whole transaction and nothing of
/// it stays. Session settings a file makes carry over to the next, as they do within one
/// `supabase db push` session; a `set local` does too here, where the CLI's per-file commit
/// would end it.
pub fn apply_migrations(files: &[&MigrationFile]) -> GuardedSql {
    let mut text = format!("{LOCK}{HISTORY_DDL}");
    for file in files {
        let statements = statements_of(file);
        let array = if statements.is_empty() {
            "array[]::text[]".to_string()
        } else {
            let items: Vec<String> = statements.iter().map(|s| literal(s)).collect();
            format!("array[{}]::text[]", items.join(", "))
        };
        text.push_str(&format!(
            "{guard}\n{body}\n;\ninsert into supabase_migrations.schema_migrations (version, name, statements) values ({v}, {n}, {array});\n",
            guard = already_applied_guard(
                "select 1 from supabase_migrations.schema_migrations where version = ",
                &file.version
            ),
            body = file.sql,
            v = literal(&file.version),
            n = literal(&file.name),
        ));
    }
    GuardedSql(text)
}

/// Consecutive runs of `files` whose SQL together stays within `max_bytes` (a file larger than
/// that is a run of its own): how many migrations one request may carry.
pub fn batches<'f>(files: &[&'f MigrationFile], max_bytes: usize) -> Vec<Vec<&'f MigrationFile>> {
    let mut out: Vec<Vec<&MigrationFile>> = Vec::new();
    let mut size = 0;
    for &file in files {
        match out.last_mut() {
            Some(batch) if size + file.sql.len() <= max_bytes => batch.push(file),
            Some(_) | None => {
                out.push(vec![file]);
                size = 0;
            }
        }
        size += file.sql.len();
    }
    out
}

/// Apply the seed once: bind the client's settings, run the seed, record path and hash.
pub fn apply_seed(
    seed_sql: &str,
    path: &str,
    sha256: &str,
    settings: &[(&str, String)],
) -> GuardedSql {
    let sets: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("set_config({}, {}, true)", literal(k), literal(v)))
        .collect();
    GuardedSql(format!(
        "{LOCK}{HISTORY_DDL}{guard}\nselect {sets};\n{seed_sql}\n;\ninsert into supabase_migrations.seed_files (path, hash) values ({p}, {h}) on conflict (path) do update set hash = excluded.hash;\n",
        guard = already_applied_guard(
            "select 1 from supabase_migrations.seed_files where path = ",
            path
        ),
        sets = sets.join(", "),
        p = literal(path),
        h = literal(sha256),
    ))
}

/// Record the seed as applied without running it (its rows were put there by hand): the same
/// guard and history row as [`apply_seed`], so a re-send records nothing twice.
pub fn record_seed(path: &str, sha256: &str) -> GuardedSql {
    GuardedSql(format!(
        "{LOCK}{HISTORY_DDL}{guard}\ninsert into supabase_migrations.seed_files (path, hash) values ({p}, {h});\n",
        guard = already_applied_guard(
            "select 1 from supabase_migrations.seed_files where path = ",
            path
        ),
        p = literal(path),
        h = literal(sha256),
    ))
}

/// `migrations.seed_check` run with the seed's settings bound (read-only; the last statement's
/// one boolean column is the answer).
pub fn seed_check(check: &str, settings: &[(&str, String)]) -> String {
    let sets: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("set_config({}, {}, true)", literal(k), literal(v)))
        .collect();
    format!(
        "select {};\nselect ({}) as present",
        sets.join(", "),
        check.trim().trim_end_matches(';')
    )
}

/// Marker in the error raised when a concurrent run got there first.
pub const ALREADY_APPLIED: &str = "intelli: already applied";

/// The SQLSTATE of that error, which is how it is recognised (`IA`: a class of intelli's own,
/// outside the classes Postgres uses).
pub const ALREADY_APPLIED_SQLSTATE: &str = "IA001";

fn already_applied_guard(exists_query: &str, key: &str) -> String {
    format!(
        "do $guard$ begin if exists ({exists_query}{k}) then raise exception '{ALREADY_APPLIED}: %', {k} using errcode = '{ALREADY_APPLIED_SQLSTATE}'; end if; end $guard$;",
        k = literal(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_order_and_stay_within_the_size() {
        let file = |v: &str, len: usize| MigrationFile {
            version: v.into(),
            name: format!("m{v}"),
            path: format!("migrations/{v}_m{v}.sql").into(),
            sql: "x".repeat(len),
        };
        let files = [
            file("1", 40),
            file("2", 40),
            file("3", 30),
            file("4", 200),
            file("5", 10),
        ];
        let refs: Vec<&MigrationFile> = files.iter().collect();
        let versions = |b: &Vec<&MigrationFile>| -> Vec<String> {
            b.iter().map(|f| f.version.clone()).collect()
        };
        let got: Vec<Vec<String>> = batches(&refs, 100).iter().map(versions).collect();
        // 40 + 40 fits, + 30 does not; the 200-byte file goes alone; 5 starts a new batch.
        assert_eq!(got, [vec!["1", "2"], vec!["3"], vec!["4"], vec!["5"]]);
        assert!(batches(&[], 100).is_empty());
    }

    #[test]
    fn a_batch_guards_and_records_every_file_in_order() {
        let file = |v: &str, sql: &str| MigrationFile {
            version: v.into(),
            name: format!("m{v}"),
            path: format!("migrations/{v}_m{v}.sql").into(),
            sql: sql.into(),
        };
        let (a, b) = (
            file("1", "create table a (id int);"),
            file("2", "create table b (id int);"),
        );
        let text = apply_migrations(&[&a, &b]).0;
        assert_eq!(text.matches("pg_advisory_xact_lock").count(), 1);
        assert_eq!(text.matches(ALREADY_APPLIED_SQLSTATE).count(), 2);
        let order = [
            "create table a",
            "values ($q$1$q$",
            "create table b",
            "values ($q$2$q$",
        ];
        let positions: Vec<usize> = order.iter().map(|s| text.find(s).expect(s)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(apply_migration(&a).0, apply_migrations(&[&a]).0);
    }

    #[test]
    fn literals_survive_hostile_values() {
        assert_eq!(literal("plain"), "$q$plain$q$");
        assert_eq!(literal("has $q$ inside"), "$q1$has $q$ inside$q1$");
        assert_eq!(literal("ends with $"), "$q$ends with $$q$");
        assert_eq!(literal("ends with $q"), "$q1$ends with $q$q1$");
        assert_eq!(literal("it's \\ fine"), "$q$it's \\ fine$q$");
    }
}
