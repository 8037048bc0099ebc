//! `--shard K/N` (README "Big fleets: shards"): a plan-only run of the binary against a
//! simulator with two Cloudflare accounts (no databases are made: plan creates nothing). The
//! union of the N shard plans is the full plan, the shards are disjoint, each plan says which
//! shard it is, placement is the whole fleet's, and a client keeps its shard when others are
//! added.

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use intelli::cloudflare::{CloudflareClient, CloudflareConfig};
use intelli::lease::{Lease, LeaseConfig};
use intelli::shard::Shard;
use intelli::sim::server::{OrgConfig, SimConfig, SimHandle};
use secrecy::SecretString;
use serde_json::Value;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

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
             \x20     max_projects: 20\n\
             \x20   - id: {B}\n\
             frontend:\n  dir: web\n  install_command: 'true'\n  build_command: 'mkdir -p {{out_dir}} && cp index.html {{out_dir}}/'\n\
             defaults:\n  supabase:\n    region: eu-west-2\n"
        ),
    )
    .expect("fleet.yaml");
    for i in 0..n {
        std::fs::write(
            fleet.join(format!("c{i:03}.yaml")),
            format!("client: c{i:03}\n"),
        )
        .expect("client file");
    }
}

fn plan(root: &Path, sim: &SimHandle, args: &[&str]) -> (Value, String) {
    let out_file = root.join("plan.json");
    let _ = std::fs::remove_file(&out_file);
    let out = Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(root)
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
        .args(args)
        .output()
        .expect("run plan");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).expect("saved plan");
    (serde_json::from_str(&text).expect("plan json"), stdout)
}

fn clients(plan: &Value) -> BTreeMap<String, Value> {
    plan["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| (c["client"].as_str().expect("slug").to_string(), c.clone()))
        .collect()
}

async fn simulator() -> SimHandle {
    let mut config = SimConfig::default();
    config.supabase.organizations = vec![OrgConfig {
        slug: "test-org".into(),
        name: "Test".into(),
    }];
    config.cloudflare.account_ids = vec![A.into(), B.into()];
    config.cloudflare.zone_names = vec!["example.io".into()];
    intelli::sim::server::start(config)
        .await
        .unwrap_or_else(|e| panic!("starting the simulator (needs PostgreSQL): {e:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shards_of_a_fleet_partition_its_plan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write_fleet(root, 40);
    let sim = simulator().await;

    let (full, _) = plan(root, &sim, &[]);
    assert!(full.get("shard").is_none(), "the whole fleet has no shard");
    let full = clients(&full);
    assert_eq!(full.len(), 40);

    let mut union = BTreeMap::new();
    let mut assignment = BTreeMap::new();
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let (p, text) = plan(root, &sim, &["--shard", &shard]);
        assert_eq!(p["shard"], shard.as_str());
        assert!(
            text.starts_with(&format!("Shard {shard} of the fleet")),
            "{text}"
        );
        let part = clients(&p);
        assert!(
            !part.is_empty() && part.len() < 40,
            "shard {shard}: {}",
            part.len()
        );
        for (slug, c) in part {
            assignment.insert(slug.clone(), k);
            assert!(
                union.insert(slug.clone(), c).is_none(),
                "{slug} in two shards"
            );
        }
    }
    // Same clients, same actions — including the Cloudflare account each new site is placed
    // in, which only a fleet-wide placement gets right (20 fit in A, the rest go to B).
    assert_eq!(union, full, "the union of the shard plans is the full plan");

    let (_, md) = plan(root, &sim, &["--format", "markdown", "--shard", "3/4"]);
    assert!(md.starts_with("### intelli plan — shard 3/4"), "{md}");

    // New clients join their own shards; nobody moves.
    for i in 40..60 {
        std::fs::write(
            root.join(format!("fleet/c{i:03}.yaml")),
            format!("client: c{i:03}\n"),
        )
        .expect("client file");
    }
    for k in 1..=4 {
        let (p, _) = plan(root, &sim, &["--shard", &format!("{k}/4")]);
        for slug in clients(&p).keys() {
            if let Some(before) = assignment.get(slug) {
                assert_eq!(*before, k, "{slug} moved from shard {before} to {k}");
            }
        }
    }
}

/// `apply --shard K/N` takes the lease of (fleet, K/N): beside a holder that splits the fleet
/// differently it refuses before touching anything.
#[tokio::test(flavor = "multi_thread")]
async fn apply_of_a_shard_refuses_a_lease_of_another_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write_fleet(root, 4);
    let sim = simulator().await;
    let mut cf = CloudflareConfig::new(SecretString::from(sim.cloudflare_token()), A.to_string());
    cf.api_base = sim.cloudflare_api_url().parse().expect("api base URL");
    let cf = CloudflareClient::new(cf).expect("client");
    let mut lease = LeaseConfig::new("example.io", "intelli-", std::time::Duration::ZERO);
    lease.shard = Shard { index: 1, count: 3 };
    let held = Lease::acquire(&cf, &lease, &|_| {})
        .await
        .expect("a 3-shard holder");

    let out = Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(root)
        .env("SUPABASE_ACCESS_TOKEN", sim.supabase_token())
        .env("SUPABASE_API_URL", sim.supabase_api_url())
        .env("SUPABASE_PROJECT_URL_TEMPLATE", sim.project_url_template())
        .env("CLOUDFLARE_API_TOKEN", sim.cloudflare_token())
        .env("CLOUDFLARE_API_BASE_URL", sim.cloudflare_api_url())
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .args(["apply", "--yes", "--shard", "2/4"])
        .output()
        .expect("run apply");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("splits the fleet into 3 shards, not 4"),
        "{stderr}"
    );
    held.release().await.expect("release");
}
