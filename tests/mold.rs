//! The master mold on real PostgreSQL: bootstrap, every migration, the seed, row level security.

mod common;

use common::{TempDb, repo_root};
use intelli::fleet::Fleet;
use intelli::migrate;

/// Bootstrap (twice: it must be idempotent), then each migration in its own transaction.
async fn migrated_db(prefix: &str) -> (TempDb, tokio_postgres::Client) {
    let db = TempDb::new(prefix).await;
    let mut client = db.connect().await;
    for round in 0..2 {
        migrate::run_in_transaction(&mut client, intelli::pg::SUPABASE_BOOTSTRAP)
            .await
            .unwrap_or_else(|e| panic!("bootstrap round {round}: {e:#}"));
    }
    let files = migrate::discover(&repo_root().join("migrations")).expect("discover migrations");
    assert!(files.len() >= 5, "the mold should have several migrations");
    for f in &files {
        migrate::run_in_transaction(&mut client, &f.sql)
            .await
            .unwrap_or_else(|e| panic!("migration {}: {e:?}", f.path.display()));
    }
    (db, client)
}

#[tokio::test]
async fn migrations_and_seed_build_a_working_client_database() {
    let (_db, mut client) = migrated_db("mold_seed").await;

    let tables: Vec<String> = client
        .query(
            "select relname::text from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' order by 1",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for want in [
        "companies",
        "company_members",
        "company_settings",
        "customers",
        "estimate_line_items",
        "estimates",
        "service_categories",
        "technicians",
        "ticket_photos",
        "ticket_statuses",
        "tickets",
    ] {
        assert!(
            tables.iter().any(|t| t == want),
            "table {want} missing; have {tables:?}"
        );
    }

    let no_rls: Vec<String> = client
        .query(
            "select relname::text from pg_class where relnamespace = 'public'::regnamespace \
             and relkind in ('r','p') and not relrowsecurity",
            &[],
        )
        .await
        .expect("rls query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        no_rls.is_empty(),
        "tables without row level security: {no_rls:?}"
    );

    let unindexed: Vec<String> = client
        .query(
            "select c.conrelid::regclass::text || '.' || c.conname from pg_constraint c
              where c.contype = 'f' and c.connamespace = 'public'::regnamespace
                and not exists (select 1 from pg_index i where i.indrelid = c.conrelid
                  and (i.indkey::int2[])[0:cardinality(c.conkey)-1] @> c.conkey
                  and (i.indkey::int2[])[0:cardinality(c.conkey)-1] <@ c.conkey)",
            &[],
        )
        .await
        .expect("fk index query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:?}"
    );

    // The seed, with a display name that would break naive string pasting.
    let fleet = Fleet::load(&repo_root().join("fleet")).expect("example fleet");
    let mut acme = fleet.clients["acme"].clone();
    let nasty = r#"O'Brien "Quotes" \ Backslash'); drop table tickets; --"#;
    acme.display_name = nasty.to_string();
    let seed =
        std::fs::read_to_string(repo_root().join("migrations/seed/client.sql")).expect("seed file");
    let settings = migrate::seed_settings(&acme);
    migrate::run_seed(&mut client, &seed, &settings)
        .await
        .expect("seed");

    let row = client
        .query_one(
            "select c.slug, c.name, s.display_name, s.domain, s.site_url
               from companies c join company_settings s on s.company_id = c.id",
            &[],
        )
        .await
        .expect("one company with settings");
    assert_eq!(row.get::<_, String>(0), "acme");
    assert_eq!(
        row.get::<_, String>(1),
        nasty,
        "display name must land intact"
    );
    assert_eq!(row.get::<_, String>(2), nasty);
    assert_eq!(row.get::<_, String>(3), "acme.intelliservice.io");
    assert_eq!(row.get::<_, String>(4), "https://acme.intelliservice.io");
    let statuses: i64 = client
        .query_one("select count(*) from ticket_statuses", &[])
        .await
        .expect("count")
        .get(0);
    assert!(
        statuses >= 5,
        "default ticket statuses seeded, got {statuses}"
    );
    let categories: i64 = client
        .query_one("select count(*) from service_categories", &[])
        .await
        .expect("count")
        .get(0);
    assert!(
        categories >= 3,
        "default service categories seeded, got {categories}"
    );
    assert!(
        tables.contains(&"tickets".to_string()),
        "tickets survived the seed"
    );

    // Re-running the seed duplicates nothing.
    migrate::run_seed(&mut client, &seed, &settings)
        .await
        .expect("seed again");
    let companies: i64 = client
        .query_one("select count(*) from companies", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(companies, 1);
}

const USER_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const USER_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const COMPANY_B: &str = "bbbbbbbb-1111-4000-8000-00000000000b";

#[tokio::test]
async fn authenticated_users_only_see_their_own_company() {
    let (_db, mut client) = migrated_db("mold_rls").await;
    client
        .batch_execute(&format!(
            "insert into auth.users (id, email) values ('{USER_A}', 'alice@a.example'), ('{USER_B}', 'bob@b.example');
             insert into public.companies (id, slug, name) values
               ('aaaaaaaa-1111-4000-8000-00000000000a', 'company-a', 'Company A'),
               ('{COMPANY_B}', 'company-b', 'Company B');
             insert into public.company_members (company_id, user_id, role) values
               ('aaaaaaaa-1111-4000-8000-00000000000a', '{USER_A}', 'owner'),
               ('{COMPANY_B}', '{USER_B}', 'owner');
             insert into public.ticket_statuses (company_id, code, label, sort_order) values
               ('aaaaaaaa-1111-4000-8000-00000000000a', 'new', 'New', 10),
               ('{COMPANY_B}', 'new', 'New', 10);
             insert into public.customers (id, company_id, name) values
               ('aaaaaaaa-2222-4000-8000-00000000000a', 'aaaaaaaa-1111-4000-8000-00000000000a', 'Customer of A'),
               ('bbbbbbbb-2222-4000-8000-00000000000b', '{COMPANY_B}', 'Customer of B');
             insert into public.tickets (company_id, customer_id, title) values
               ('aaaaaaaa-1111-4000-8000-00000000000a', 'aaaaaaaa-2222-4000-8000-00000000000a', 'A ticket 1'),
               ('aaaaaaaa-1111-4000-8000-00000000000a', 'aaaaaaaa-2222-4000-8000-00000000000a', 'A ticket 2'),
               ('{COMPANY_B}', 'bbbbbbbb-2222-4000-8000-00000000000b', 'B ticket 1');"
        ))
        .await
        .expect("fixtures");

    async fn titles_as(
        client: &mut tokio_postgres::Client,
        role: &str,
        sub: Option<&str>,
    ) -> (Vec<String>, Vec<String>) {
        let tx = client.transaction().await.expect("tx");
        tx.batch_execute(&format!("set local role {role}"))
            .await
            .expect("set role");
        let claims = match sub {
            Some(s) => serde_json::json!({"sub": s, "role": role}),
            None => serde_json::json!({"role": role}),
        };
        tx.execute(
            "select set_config('request.jwt.claims', $1, true)",
            &[&claims.to_string()],
        )
        .await
        .expect("claims");
        let tickets = tx
            .query("select title from public.tickets order by title", &[])
            .await
            .expect("tickets")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let customers = tx
            .query("select name from public.customers order by name", &[])
            .await
            .expect("customers")
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.rollback().await.expect("rollback");
        (tickets, customers)
    }

    let (t, c) = titles_as(&mut client, "authenticated", Some(USER_A)).await;
    assert_eq!(t, ["A ticket 1", "A ticket 2"]);
    assert_eq!(c, ["Customer of A"]);
    let (t, c) = titles_as(&mut client, "authenticated", Some(USER_B)).await;
    assert_eq!(t, ["B ticket 1"]);
    assert_eq!(c, ["Customer of B"]);
    let (t, c) = titles_as(&mut client, "anon", None).await;
    assert!(
        t.is_empty() && c.is_empty(),
        "anon sees nothing, got {t:?} {c:?}"
    );

    // Writing into another company's rows is refused by policy.
    let tx = client.transaction().await.expect("tx");
    tx.batch_execute("set local role authenticated")
        .await
        .expect("role");
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&serde_json::json!({"sub": USER_A, "role": "authenticated"}).to_string()],
    )
    .await
    .expect("claims");
    let err = tx
        .batch_execute(&format!(
            "insert into public.tickets (company_id, customer_id, title) values ('{COMPANY_B}', 'bbbbbbbb-2222-4000-8000-00000000000b', 'evil')"
        ))
        .await
        .expect_err("inserting into another company must fail");
    assert!(
        err.to_string().contains("row-level security")
            || format!("{err:?}").contains("row-level security"),
        "unexpected error: {err:?}"
    );
}
