//! Supabase's API keys end to end (issue 10): projects with only new keys, only legacy keys,
//! both, and legacy keys switched off after the site was deployed with the publishable key.
//! The binary against the simulator over sockets, real PostgreSQL, the real example frontend
//! built with npm and Vite.

mod common;

use common::world::World;
use intelli::sim::supabase::keys::KeyKind;
use serde_json::Value;

/// Fetch `path` of the site served for `domain` (the simulator serves by `Host`).
async fn fetch(w: &World, domain: &str, path: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", w.sim.base_url()))
        .header("host", domain)
        .send()
        .await
        .expect("fetch site");
    assert_eq!(resp.status().as_u16(), 200, "{domain}{path}");
    resp.text().await.unwrap_or_default()
}

/// The site's JavaScript, found through its index.html.
async fn site_js(w: &World, domain: &str) -> String {
    let index = fetch(w, domain, "/").await;
    let mut js = String::new();
    for part in index.split("src=\"").skip(1) {
        let src = part.split('"').next().unwrap_or("");
        if src.ends_with(".js") {
            js.push_str(&fetch(w, domain, src).await);
        }
    }
    assert!(!js.is_empty(), "{domain}: index.html references its JS");
    js
}

/// A Management API call as an operator would make it in the dashboard.
async fn management(w: &World, method: reqwest::Method, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", w.sim.supabase_api_url()))
        .bearer_auth(w.sim.supabase_token())
        .send()
        .await
        .expect("management call");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

/// Leave the project with its legacy keys only: delete every publishable and secret key.
async fn delete_new_keys(w: &World, r: &str) {
    let listed = management(
        w,
        reqwest::Method::GET,
        &format!("/v1/projects/{r}/api-keys"),
    )
    .await;
    for k in listed.as_array().expect("key list") {
        if k["type"] != "legacy" {
            let id = k["id"].as_str().expect("key id");
            management(
                w,
                reqwest::Method::DELETE,
                &format!("/v1/projects/{r}/api-keys/{id}"),
            )
            .await;
        }
    }
}

/// `(client, action types)` of a saved plan.
fn planned(path: &std::path::Path) -> Vec<(String, Vec<String>, Vec<String>)> {
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("saved plan")).expect("json");
    plan["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| {
            let types = c["actions"]
                .as_array()
                .expect("actions")
                .iter()
                .map(|a| a["type"].as_str().unwrap_or("").to_string())
                .collect();
            let notes = c["notes"]
                .as_array()
                .expect("notes")
                .iter()
                .map(|n| n.as_str().unwrap_or("").to_string())
                .collect();
            (c["client"].as_str().unwrap_or("").to_string(), types, notes)
        })
        .collect()
}

fn actions_of(plan: &[(String, Vec<String>, Vec<String>)], client: &str) -> Vec<String> {
    plan.iter()
        .find(|(c, _, _)| c == client)
        .map(|(_, a, _)| a.clone())
        .unwrap_or_default()
}

fn assert_clean(w: &mut World) {
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "plan is clean:\n{}",
        String::from_utf8_lossy(&clean.stdout)
    );
}

const CLIENTS: [(&str, &str, &str); 3] = [
    ("acme", "intelli-acme", "acme.intelliservice.io"),
    ("globex", "intelli-globex", "globex.intelliservice.io"),
    (
        "initech",
        "intelli-initech",
        "service.initech.intelliservice.io",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn new_legacy_and_mixed_keys_converge_and_legacy_keys_go_off_only_after_the_deploy() {
    // Projects made while the platform still handed out legacy keys: both kinds.
    let mut w = World::with_frontend_configured(|c| c.supabase.legacy_api_keys = true).await;
    w.run_ok(&["apply", "--yes"]);
    let refs: Vec<String> = CLIENTS.iter().map(|(_, p, _)| w.project_ref(p)).collect();

    // acme: only its legacy keys are left; globex: only new keys (legacy off); initech: both.
    delete_new_keys(&w, &refs[0]).await;
    management(
        &w,
        reqwest::Method::PUT,
        &format!("/v1/projects/{}/api-keys/legacy?enabled=false", refs[1]),
    )
    .await;
    // The fleet asks for the legacy keys to go.
    let fleet_yaml = w.root().join("fleet/fleet.yaml");
    let text = std::fs::read_to_string(&fleet_yaml).expect("fleet.yaml");
    let with_disable = text.replace(
        "  organization_slug: intelliservice\n",
        "  organization_slug: intelliservice\n  legacy_keys: disable\n",
    );
    assert_ne!(text, with_disable, "fleet.yaml has the organization line");
    std::fs::write(&fleet_yaml, with_disable).expect("write fleet.yaml");

    // acme gets both keys and a rebuild, and keeps its legacy keys: its site still serves a
    // build made with the key that is gone. initech's site serves the publishable build: off.
    let first = w.root().join("first.json");
    let out = w.run(&["plan", "--out", first.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = planned(&first);
    assert_eq!(
        actions_of(&plan, "acme"),
        ["create_api_key", "create_api_key", "deploy"],
        "{plan:?}"
    );
    assert!(
        plan.iter().any(|(c, _, notes)| c == "acme"
            && notes.iter().any(|n| n.contains("legacy API keys stay on"))),
        "{plan:?}"
    );
    assert_eq!(actions_of(&plan, "globex"), Vec::<String>::new());
    assert_eq!(actions_of(&plan, "initech"), ["disable_legacy_keys"]);
    w.run_ok(&["apply", "--yes"]);

    // Now acme's site serves the publishable build: its legacy keys go, and only then.
    let second = w.root().join("second.json");
    let out = w.run(&["plan", "--out", second.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = planned(&second);
    assert_eq!(
        actions_of(&plan, "acme"),
        ["disable_legacy_keys"],
        "{plan:?}"
    );
    assert!(actions_of(&plan, "globex").is_empty() && actions_of(&plan, "initech").is_empty());
    w.run_ok(&["apply", "--yes"]);
    assert_clean(&mut w);

    // Every site is built with its project's publishable key (acme's is the one intelli
    // made), never a legacy JWT; every project's legacy keys are off.
    for (i, (slug, _, domain)) in CLIENTS.iter().enumerate() {
        let keys = w.sim.supabase().project(&refs[i]).expect("project").keys;
        assert!(!keys.legacy_enabled, "{slug}: legacy keys off");
        let publishable = keys.first(KeyKind::Publishable).expect("publishable key");
        if *slug == "acme" {
            assert_eq!(publishable.name, "intelli_publishable");
            let secret = keys.first(KeyKind::Secret).expect("secret key");
            assert_eq!(secret.name, "intelli_secret");
            assert_eq!(
                secret
                    .secret_jwt_template
                    .as_ref()
                    .and_then(|t| t["role"].as_str()),
                Some("service_role")
            );
        }
        let js = site_js(&w, domain).await;
        assert!(
            js.contains(&publishable.api_key),
            "{slug}: built with its publishable key"
        );
        assert!(
            !js.contains(&keys.anon),
            "{slug}: no legacy anon key in the build"
        );
    }

    // Buckets are still managed with the secret keys alone: a new bucket for every client.
    let text = std::fs::read_to_string(&fleet_yaml).expect("fleet.yaml");
    let with_bucket = text.replace(
        "    buckets:\n",
        "    buckets:\n      invoices:\n        public: false\n",
    );
    assert_ne!(text, with_bucket, "fleet.yaml has default buckets");
    std::fs::write(&fleet_yaml, with_bucket).expect("write fleet.yaml");
    let plan = w.run_ok(&["plan"]);
    // One section for the three clients (the rollout is the same for each).
    assert!(
        plan.contains("~ 3 clients: create bucket invoices"),
        "{plan}"
    );
    let out = w.run_ok(&["apply", "--yes"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_clean(&mut w);

    w.assert_no_secrets(&[first, second]);
    w.sim.shutdown().await.expect("shutdown");
}
