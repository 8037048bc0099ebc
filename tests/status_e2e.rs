//! `intelli status` end to end against the simulator: exit codes, the JSON schema, the HTML
//! page, and the request budget (exactly a no-op plan's).

mod common;

use common::world::World;
use intelli::sim::server::{Stats, Vendor};

/// Requests by (vendor, method, route), statuses summed.
fn by_route(stats: &Stats) -> std::collections::BTreeMap<(String, String, String), u64> {
    let mut m = std::collections::BTreeMap::new();
    for r in &stats.requests {
        *m.entry((format!("{:?}", r.vendor), r.method.clone(), r.route.clone()))
            .or_default() += r.count;
    }
    m
}

const CLIENTS: [&str; 3] = ["acme", "globex", "initech"];

#[tokio::test(flavor = "multi_thread")]
async fn status_after_apply_then_after_a_new_migration() {
    let mut w = World::with_frontend().await;
    w.run_ok(&["apply", "--yes"]);

    // Converged: exit 0, one row per client.
    let out = w.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    for c in CLIENTS {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{c} ")))
            .unwrap_or_else(|| panic!("a row for {c}:\n{text}"));
        assert!(
            line.contains("Converged") && line.contains("current"),
            "{line}"
        );
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(!text.contains('\x1b'), "no colour in a pipe:\n{text}");

    // The same requests as a no-op plan, route by route.
    w.sim.reset_stats();
    w.run_ok(&["plan", "--detailed-exitcode"]);
    let plan_requests = by_route(&w.sim.stats());
    w.sim.reset_stats();
    let out = w.run(&["status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let status_requests = by_route(&w.sim.stats());
    assert_eq!(status_requests, plan_requests);
    assert!(status_requests.values().sum::<u64>() > 0);
    eprintln!(
        "status requests: {} (Supabase {}, Storage {}, Cloudflare {})",
        status_requests.values().sum::<u64>(),
        w.sim.stats().total(Vendor::Supabase),
        w.sim.stats().total(Vendor::Storage),
        w.sim.stats().total(Vendor::Cloudflare)
    );

    // The JSON validates against the committed schema.
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("schema/status.schema.json"))
            .expect("committed schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(value["summary"]["converged"], 3);

    // A new migration: pending for every client, exit 2.
    std::fs::write(
        w.root().join("migrations/29990101000000_status_probe.sql"),
        "create table public.status_probe (id int primary key);\n",
    )
    .expect("write migration");
    let out = w.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    for c in CLIENTS {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{c} ")))
            .unwrap_or_else(|| panic!("a row for {c}:\n{text}"));
        assert!(line.contains("Drifting") && line.contains(" +1 "), "{line}");
    }
    let out = w.run(&["status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for c in value["clients"].as_array().expect("clients") {
        assert_eq!(
            c["migrations"]["pending"],
            serde_json::json!(["29990101000000"]),
            "{c}"
        );
    }

    // HTML: one self-contained page naming every client, and no secret anywhere.
    let page = w.root().join("status.html");
    let out = w.run(&["status", "--format", "html", "--out", "status.html"]);
    assert_eq!(out.status.code(), Some(2));
    let html = std::fs::read_to_string(&page).expect("html written");
    for c in CLIENTS {
        assert!(html.contains(&format!("<tr><td>{c}</td>")), "row for {c}");
    }
    // The chart: every database at the same (newest applied) version, one bar of 3.
    assert_eq!(html.matches("<rect").count(), 1, "one version in the chart");
    assert!(html.contains(": 3 client(s)</title>"));
    assert!(
        !html.contains("https://cdn") && !html.contains("<link"),
        "self-contained"
    );
    let md = w.run(&["status", "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(2));
    w.assert_no_secrets(&[page]);
}
