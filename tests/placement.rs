//! Several Cloudflare accounts: where each client's Pages project goes
//! (`intelli::fleet::placement`), as placement logic over generated fleets of 230 and 301
//! clients, and as a plan-only run of the binary against a simulator with three accounts of
//! 100 projects each (no databases are made: plan creates nothing).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use intelli::fleet::Fleet;
use intelli::fleet::placement::{self, Inventory, Placement};
use intelli::sim::server::{OrgConfig, SimConfig};
use serde_json::Value;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccc";

/// A scratch repository with `n` clients (`c000` …) over accounts A, B, C of 100 projects.
fn write_fleet(root: &Path, n: usize) {
    let fleet = root.join("fleet");
    std::fs::create_dir_all(&fleet).expect("fleet dir");
    std::fs::create_dir_all(root.join("migrations/seed")).expect("migrations dir");
    std::fs::write(root.join("migrations/seed/client.sql"), "select 1;\n").expect("seed");
    std::fs::create_dir_all(root.join("web")).expect("frontend dir");
    std::fs::write(root.join("web/index.html"), "<p>hi</p>\n").expect("frontend file");
    std::fs::write(
        fleet.join("fleet.yaml"),
        format!(
            "name_prefix: intelli-\n\
             base_domain: example.io\n\
             supabase:\n  organization_slug: test-org\n\
             cloudflare:\n  zone: example.io\n  accounts:\n\
             \x20   - id: {A}\n\
             \x20   - id: {B}\n\
             \x20     max_projects: 100\n\
             \x20   - id: {C}\n\
             frontend:\n  dir: web\n  install_command: 'true'\n  build_command: 'mkdir -p {{out_dir}} && cp index.html {{out_dir}}/'\n\
             defaults:\n  supabase:\n    region: eu-west-2\n"
        ),
    )
    .expect("fleet.yaml");
    for i in 0..n {
        write_client(root, &client(i), "");
    }
}

fn client(i: usize) -> String {
    format!("c{i:03}")
}

fn write_client(root: &Path, slug: &str, extra: &str) {
    std::fs::write(
        root.join("fleet").join(format!("{slug}.yaml")),
        format!("client: {slug}\n{extra}"),
    )
    .expect("client file");
}

fn load(root: &Path) -> Fleet {
    Fleet::load(&root.join("fleet")).unwrap_or_else(|d| panic!("fleet invalid:\n{d}"))
}

fn place(fleet: &Fleet, inventory: &Inventory) -> Placement {
    placement::place(fleet, &fleet.cloudflare_accounts(), inventory)
        .unwrap_or_else(|d| panic!("placement failed:\n{d}"))
}

fn counts(p: &Placement) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for account in p.values() {
        *out.entry(account.clone()).or_default() += 1;
    }
    out
}

/// What the accounts would hold once every placed site exists.
fn created(fleet: &Fleet, p: &Placement) -> Inventory {
    let mut inv = Inventory::new();
    for (slug, account) in p {
        inv.entry(account.clone())
            .or_default()
            .insert(fleet.clients[slug].pages_project.clone());
    }
    inv
}

#[test]
fn two_hundred_thirty_clients_fill_the_accounts_in_order_and_stay_put() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_fleet(tmp.path(), 230);
    let fleet = load(tmp.path());

    // Nothing exists yet: the first 100 clients (slug order) go to A, the next 100 to B.
    let first = place(&fleet, &Inventory::new());
    assert_eq!(
        counts(&first),
        BTreeMap::from([(A.into(), 100), (B.into(), 100), (C.into(), 30)])
    );
    assert_eq!(first[&client(0)], A);
    assert_eq!(first[&client(99)], A);
    assert_eq!(first[&client(100)], B);
    assert_eq!(first[&client(229)], C);
    // The same fleet and accounts: the same placement, run after run.
    assert_eq!(place(&load(tmp.path()), &Inventory::new()), first);

    // Once the sites exist, removing a client moves nobody: every other site stays where it is
    // (its project, still in A until deleted, keeps counting against A).
    let inventory = created(&fleet, &first);
    std::fs::remove_file(tmp.path().join("fleet/c010.yaml")).expect("remove a client");
    let after = place(&load(tmp.path()), &inventory);
    let mut expected = first.clone();
    expected.remove("c010");
    assert_eq!(after, expected);

    // Its project deleted, A has room again: a new client takes it, nobody else moves.
    let mut inventory = inventory;
    inventory
        .get_mut(A)
        .expect("A holds projects")
        .remove("intelli-c010");
    write_client(tmp.path(), "zz-new", "");
    let with_new = place(&load(tmp.path()), &inventory);
    assert_eq!(with_new["zz-new"], A);
    for (slug, account) in &expected {
        assert_eq!(&with_new[slug], account, "{slug} moved");
    }

    // A site found in another account than the order would give stays there, and the order
    // fills around it; a project intelli does not manage takes room too.
    let mut inv = Inventory::new();
    inv.entry(C.into())
        .or_default()
        .insert("intelli-c000".to_string());
    inv.entry(A.into())
        .or_default()
        .insert("someone-elses-site".to_string());
    let p = place(&fleet, &inv);
    assert_eq!(p[&client(0)], C);
    assert_eq!(p[&client(1)], A);
    assert_eq!(
        p[&client(99)],
        A,
        "99 new clients + 1 foreign project fill A"
    );
    assert_eq!(p[&client(100)], B);
    assert_eq!(counts(&p)[C], 31);
}

#[test]
fn pins_are_honoured_and_checked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_fleet(tmp.path(), 5);
    write_client(
        tmp.path(),
        "c001",
        &format!("cloudflare:\n  account_id: {C}\n"),
    );
    let fleet = load(tmp.path());
    let p = place(&fleet, &Inventory::new());
    assert_eq!(p["c001"], C, "a pinned new client goes to its account");
    assert_eq!(p["c000"], A);
    assert_eq!(p["c002"], A);

    // A pin that disagrees with where the site is: intelli never moves a site.
    let mut inv = Inventory::new();
    inv.entry(B.into())
        .or_default()
        .insert("intelli-c001".to_string());
    let err = placement::place(&fleet, &fleet.cloudflare_accounts(), &inv)
        .expect_err("pin against an existing site");
    let text = err.to_string();
    assert!(text.contains("c001.yaml:3:"), "{text}");
    assert!(text.contains("never moves a site"), "{text}");

    // A pin to an account the fleet does not list is a validate error, with file and line.
    write_client(
        tmp.path(),
        "c003",
        "cloudflare:\n  account_id: dddddddddddddddddddddddddddddddd\n",
    );
    let err = Fleet::load(&tmp.path().join("fleet")).expect_err("unknown pinned account");
    let text = err.to_string();
    assert!(text.contains("c003.yaml:3:"), "{text}");
    assert!(
        text.contains("not one of the fleet's Cloudflare accounts"),
        "{text}"
    );
}

#[test]
fn a_fleet_of_301_does_not_fit_and_says_where() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_fleet(tmp.path(), 301);
    let err = Fleet::load(&tmp.path().join("fleet")).expect_err("301 clients on 300 projects");
    let text = err.to_string();
    // fleet.yaml line 7 is `accounts:`.
    assert!(text.contains("fleet.yaml:7:"), "{text}");
    assert!(text.contains("cloudflare.accounts"), "{text}");
    assert!(text.contains("does not fit"), "{text}");
    assert!(
        text.contains("c300"),
        "the client left over is named: {text}"
    );

    // `intelli validate` says the same, and exits 1.
    let out = Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(tmp.path())
        .arg("validate")
        .output()
        .expect("run validate");
    assert_eq!(out.status.code(), Some(1));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("does not fit"), "{printed}");
}

#[test]
fn one_account_forms_are_exclusive() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_fleet(tmp.path(), 1);
    let path = tmp.path().join("fleet/fleet.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "  zone: example.io\n",
            &format!("  zone: example.io\n  account_id: {A}\n"),
        ),
    )
    .expect("write");
    let err = Fleet::load(&tmp.path().join("fleet")).expect_err("both forms");
    assert!(err.to_string().contains("not both"), "{err}");
}

/// The binary, against a simulator with three accounts, makes a plan only.
fn plan_json(
    root: &Path,
    sim: &intelli::sim::server::SimHandle,
    extra: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, Value, String) {
    let out_file = root.join("plan.json");
    let _ = std::fs::remove_file(&out_file);
    let mut cmd = Command::cargo_bin("intelli").expect("binary");
    cmd.current_dir(root)
        .env("SUPABASE_ACCESS_TOKEN", sim.supabase_token())
        .env("SUPABASE_API_URL", sim.supabase_api_url())
        .env("SUPABASE_PROJECT_URL_TEMPLATE", sim.project_url_template())
        .env("CLOUDFLARE_API_TOKEN", sim.cloudflare_token())
        .env("CLOUDFLARE_API_BASE_URL", sim.cloudflare_api_url())
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env_remove("INTELLI_DATABASE_URL_TEMPLATE")
        .env("NO_COLOR", "1")
        .arg("plan")
        .args(["--out", out_file.to_str().expect("utf-8 path")])
        .args(args);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run plan");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let plan = std::fs::read_to_string(&out_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out.status.code(), plan, stderr)
}

/// Client → account of its CreatePagesProject action.
fn planned_accounts(plan: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in plan["clients"].as_array().expect("clients") {
        for a in c["actions"].as_array().expect("actions") {
            if a["type"] == "create_pages_project" {
                out.insert(
                    c["client"].as_str().expect("slug").to_string(),
                    a["account_id"].as_str().expect("account").to_string(),
                );
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_places_230_clients_over_three_simulated_accounts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write_fleet(root, 230);
    let mut config = SimConfig::default();
    config.supabase.organizations = vec![OrgConfig {
        slug: "test-org".into(),
        name: "Test".into(),
    }];
    config.cloudflare.account_ids = vec![A.into(), B.into(), C.into()];
    config.cloudflare.zone_names = vec!["example.io".into()];
    config.cloudflare.max_projects_per_account = 100;
    let sim = intelli::sim::server::start(config)
        .await
        .unwrap_or_else(|e| panic!("starting the simulator (needs PostgreSQL): {e:#}"));

    let (code, plan, stderr) = plan_json(root, &sim, &[], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let placed = planned_accounts(&plan);
    assert_eq!(placed.len(), 230);
    let expected = place(&load(root), &Inventory::new());
    assert_eq!(placed, expected, "the plan follows placement");
    let (_, again, _) = plan_json(root, &sim, &[], &[]);
    assert_eq!(planned_accounts(&again), placed, "stable across runs");

    // --only plans one client, placed as part of the whole fleet.
    let (code, only, stderr) = plan_json(root, &sim, &[], &["--only", "c150"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        planned_accounts(&only),
        BTreeMap::from([("c150".into(), B.into())])
    );

    // Sites that exist are observed in their account and never moved; the rest fill around.
    let cf = intelli::cloudflare::CloudflareClient::new({
        let mut c = intelli::cloudflare::CloudflareConfig::new(
            secrecy::SecretString::from(sim.cloudflare_token()),
            C,
        );
        c.api_base = url::Url::parse(&sim.cloudflare_api_url()).expect("url");
        c
    })
    .expect("client");
    cf.create_project("intelli-c000", "main")
        .await
        .expect("create in C");
    let (code, plan, stderr) = plan_json(root, &sim, &[], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let placed = planned_accounts(&plan);
    assert!(!placed.contains_key("c000"), "c000 exists: no create");
    let c000 = plan["clients"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["client"] == "c000"))
        .expect("c000 planned");
    assert_eq!(c000["cloudflare_account"], C);
    assert_eq!(placed["c100"], A, "A has room for one more client now");
    assert_eq!(placed["c101"], B);

    // CLOUDFLARE_ACCOUNT_ID cannot stand for three accounts.
    let (code, _, stderr) = plan_json(root, &sim, &[("CLOUDFLARE_ACCOUNT_ID", A)], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("CLOUDFLARE_ACCOUNT_ID"), "{stderr}");

    // Nothing was created on the Supabase side by any of these plans.
    assert!(sim.supabase().projects().is_empty());
    sim.shutdown().await.expect("simulator shutdown");
}
