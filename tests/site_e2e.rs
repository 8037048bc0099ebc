//! The frontend side end to end: the real example frontend built per client with npm and Vite,
//! deployed with wrangler's protocol to the simulator, served on its custom domain.

mod common;

use common::world::World;

/// Fetch `path` of the site served for `domain` (the simulator serves by `Host`).
async fn fetch(w: &World, domain: &str, path: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", w.sim.base_url()))
        .header("host", domain)
        .send()
        .await
        .expect("fetch site");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// The site's JavaScript, found through its index.html.
async fn site_js(w: &World, domain: &str) -> String {
    let (status, index) = fetch(w, domain, "/").await;
    assert_eq!(status, 200, "{domain} serves index.html");
    let mut js = String::new();
    for part in index.split("src=\"").skip(1) {
        let src = part.split('"').next().unwrap_or("");
        if src.ends_with(".js") {
            js.push_str(&fetch(w, domain, src).await.1);
        }
    }
    assert!(
        !js.is_empty(),
        "{domain}: index.html references its JS:\n{index}"
    );
    js
}

fn cf_stat(w: &World, key: &str) -> u64 {
    w.sim
        .stats()
        .cloudflare
        .get(key)
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// `apply --yes` that must roll back `sites` sites and build and upload nothing; its progress.
fn rollback_free_apply(w: &mut World, sites: u64) -> String {
    let before: Vec<u64> = [
        "deployments_created",
        "upload_tokens_issued",
        "asset_files_uploaded",
        "rollbacks",
    ]
    .iter()
    .map(|k| cf_stat(w, k))
    .collect();
    let out = w.run(&["apply", "--yes"]);
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{progress}");
    let after: Vec<u64> = [
        "deployments_created",
        "upload_tokens_issued",
        "asset_files_uploaded",
        "rollbacks",
    ]
    .iter()
    .map(|k| cf_stat(w, k))
    .collect();
    assert_eq!(
        (
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ),
        (0, 0, 0),
        "no deployment, no upload session, no file"
    );
    assert_eq!(after[3] - before[3], sites, "one rollback per site");
    assert!(
        !progress.contains("built in"),
        "nothing was built:\n{progress}"
    );
    progress
}

fn env_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        if entry.file_name().to_string_lossy().starts_with(".env") {
            found.push(p.clone());
        }
        if p.is_dir() && entry.file_name() != "node_modules" {
            found.extend(env_files(&p));
        }
    }
    found
}

const CLIENTS: [(&str, &str); 3] = [
    ("intelli-acme", "acme.intelliservice.io"),
    ("intelli-globex", "globex.intelliservice.io"),
    ("intelli-initech", "service.initech.intelliservice.io"),
];

#[tokio::test(flavor = "multi_thread")]
async fn sites_from_empty_then_rollouts_upload_only_what_changed() {
    let mut w = World::with_frontend().await;
    let out = w.run_ok(&["apply", "--yes"]);
    assert!(
        out.contains("Apply complete: 3 client(s)") && out.contains("0 failed"),
        "{out}"
    );

    // Each site is served on its domain with its own Supabase URL and anon key, and no other's.
    let mut values = Vec::new();
    for (project, _) in CLIENTS {
        let r = w.project_ref(project);
        // New projects have no legacy keys: the site is built with the publishable key.
        let keys = w.sim.supabase().project(&r).expect("project").keys;
        let anon = keys
            .first(intelli::sim::supabase::keys::KeyKind::Publishable)
            .expect("publishable key")
            .api_key
            .clone();
        values.push((w.sim.project_url(&r), anon));
    }
    for (i, (project, domain)) in CLIENTS.iter().enumerate() {
        let js = site_js(&w, domain).await;
        assert!(
            js.contains(&values[i].0) && js.contains(&values[i].1),
            "{project}'s own URL and key"
        );
        for (j, other) in values.iter().enumerate() {
            if i != j {
                assert!(
                    !js.contains(&other.0) && !js.contains(&other.1),
                    "{project} has another client's values"
                );
            }
        }
    }
    // The CNAME points at each project's pages.dev subdomain, proxied, owned by intelli.
    let dump = w.sim.cloudflare().dump();
    let text = dump.to_string();
    for (project, domain) in CLIENTS {
        let sub = dump["projects"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == project))
            .map(|p| p["subdomain"].as_str().unwrap_or("").to_string())
            .expect("project in dump");
        assert!(
            text.contains(domain) && text.contains(&sub),
            "{domain} → {sub}"
        );
    }
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    // One source file changes: every site redeploys, and only the changed assets are sent.
    let app = w.root().join("examples/web/src/App.jsx");
    let text = std::fs::read_to_string(&app).expect("read App.jsx");
    std::fs::write(
        &app,
        text.replacen(
            "</header>",
            "<p className=\"notice\">Service update</p></header>",
            1,
        ),
    )
    .expect("edit App.jsx");
    let planned = w.run(&["plan", "--detailed-exitcode"]);
    let plan_text = String::from_utf8_lossy(&planned.stdout).into_owned();
    assert_eq!(planned.status.code(), Some(2), "{plan_text}");
    // A frontend rollout reads as one change: the three redeploys differ only in each client's
    // own Pages project and fingerprint, so they are one section.
    assert!(
        plan_text.contains("~ 3 clients: build and deploy the site to {project}"),
        "{plan_text}"
    );
    assert_eq!(
        plan_text
            .matches("reason: frontend sources changed")
            .count(),
        1,
        "{plan_text}"
    );
    let files_before = cf_stat(&w, "asset_files_uploaded");
    w.run_ok(&["apply", "--yes"]);
    let sent = cf_stat(&w, "asset_files_uploaded") - files_before;
    // Per client only the JS bundle changes (it has the client's values baked in); index.html
    // names the new bundle. CSS and _headers are unchanged and never re-sent.
    assert!(
        sent <= 6,
        "only changed files are uploaded, got {sent} for 3 sites"
    );
    for (_, domain) in CLIENTS {
        assert!(fetch(&w, domain, "/").await.0 == 200);
        assert!(
            site_js(&w, domain).await.contains("Service update"),
            "{domain} shows the change"
        );
    }
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    // The change is reverted (git revert): each project still has the deployment made before
    // it, so the plan rolls back to it — no build, no upload, one request per site.
    std::fs::write(&app, &text).expect("revert App.jsx");
    let planned = w.run(&["plan", "--detailed-exitcode"]);
    let plan_text = String::from_utf8_lossy(&planned.stdout).into_owned();
    assert_eq!(planned.status.code(), Some(2), "{plan_text}");
    assert!(
        plan_text.contains("~ 3 clients: roll back {project} to deployment {deployment}")
            && !plan_text.contains("build and deploy"),
        "{plan_text}"
    );
    let rollbacks = rollback_free_apply(&mut w, 3);
    for (_, domain) in CLIENTS {
        assert!(
            !site_js(&w, domain).await.contains("Service update"),
            "{domain} serves the reverted site"
        );
    }
    assert!(rollbacks.contains("is live again"), "{rollbacks}");
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    // One client's build-time value changes: only that client redeploys.
    let live_acme = |w: &World| {
        w.sim.cloudflare().dump()["projects"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "intelli-acme"))
            .and_then(|p| p["canonical_deployment"]["id"].as_str())
            .map(str::to_string)
            .expect("acme's live deployment")
    };
    let first = live_acme(&w);
    let acme = w.root().join("fleet/acme.yaml");
    let text = std::fs::read_to_string(&acme).expect("read acme.yaml");
    std::fs::write(&acme, text.replace("#d9480f", "#0b7285")).expect("edit acme.yaml");
    let planned = w.run_ok(&["plan"]);
    assert_eq!(
        planned.matches("reason: build-time values changed").count(),
        1,
        "{planned}"
    );
    assert!(
        planned.contains("= globex: no changes") && planned.contains("= initech: no changes"),
        "{planned}"
    );
    w.run_ok(&["apply", "--yes"]);
    assert!(
        site_js(&w, "acme.intelliservice.io")
            .await
            .contains("#0b7285")
    );
    // … and again: the live deployment now records the two before it.
    std::fs::write(&acme, text.replace("#d9480f", "#5f3dc4")).expect("edit acme.yaml");
    w.run_ok(&["apply", "--yes"]);
    assert!(
        site_js(&w, "acme.intelliservice.io")
            .await
            .contains("#5f3dc4")
    );
    // … and back two changes at once: the client's first deployment is rolled back to, like
    // the sources were, though it is not the one just before the live one.
    std::fs::write(&acme, &text).expect("revert acme.yaml");
    let planned = w.run_ok(&["plan"]);
    assert!(
        planned.contains(&format!("~ roll back intelli-acme to deployment {first}"))
            && planned.contains("= globex: no changes"),
        "{planned}"
    );
    rollback_free_apply(&mut w, 1);
    assert_eq!(live_acme(&w), first);
    let js = site_js(&w, "acme.intelliservice.io").await;
    assert!(
        js.contains("#d9480f") && !js.contains("#0b7285") && !js.contains("#5f3dc4"),
        "acme serves its first deployment again"
    );

    // A rollback whose target was deleted after the plan (old deployments pruned by hand):
    // apply builds and deploys that fingerprint instead, and the site serves it.
    std::fs::write(&acme, text.replace("#d9480f", "#0b7285")).expect("edit acme.yaml");
    w.run_ok(&["apply", "--yes"]);
    std::fs::write(&acme, &text).expect("revert acme.yaml");
    let plan_path = w.root().join("revert.json");
    let planned = w.run_ok(&["plan", "--out", plan_path.to_str().expect("utf-8 path")]);
    assert!(
        planned.contains(&format!("~ roll back intelli-acme to deployment {first}")),
        "{planned}"
    );
    let deleted = reqwest::Client::new()
        .delete(format!(
            "{}/accounts/{}/pages/projects/intelli-acme/deployments/{first}?force=true",
            w.sim.cloudflare_api_url(),
            w.sim.cloudflare_account_id()
        ))
        .bearer_auth(w.sim.cloudflare_token())
        .send()
        .await
        .expect("delete the rollback target");
    assert!(deleted.status().is_success(), "{:?}", deleted.text().await);
    let out = w.run(&["apply", "--yes", plan_path.to_str().expect("utf-8 path")]);
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "deployment {first} no longer exists; building and deploying instead"
        )),
        "{log}"
    );
    assert_ne!(live_acme(&w), first, "a new deployment");
    let js = site_js(&w, "acme.intelliservice.io").await;
    assert!(
        js.contains("#d9480f") && !js.contains("#0b7285"),
        "the reverted value is served"
    );

    assert!(
        env_files(&w.root().join("examples/web")).is_empty(),
        "no .env file left behind"
    );
    w.assert_no_secrets(&[]);
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_build_fails_that_client_only() {
    let mut w = World::with_frontend().await;
    // The test's copy of the frontend refuses to build when VITE_BREAK_BUILD is set, and only
    // globex sets it.
    let config = w.root().join("examples/web/vite.config.js");
    let text = std::fs::read_to_string(&config).expect("read vite config");
    std::fs::write(
        &config,
        format!("if (process.env.VITE_BREAK_BUILD) {{ throw new Error('broken on purpose for this client'); }}\n{text}"),
    )
    .expect("write vite config");
    let globex = w.root().join("fleet/globex.yaml");
    let text = std::fs::read_to_string(&globex).expect("read");
    std::fs::write(
        &globex,
        format!("{text}frontend:\n  env:\n    VITE_BREAK_BUILD: \"yes\"\n"),
    )
    .expect("write");

    let out = w.run(&["apply", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = |client: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(client))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        row("globex").contains("FAILED") && row("globex").contains("build failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("broken on purpose"),
        "the build's own output is shown:\n{stdout}"
    );
    assert!(
        row("acme").contains(" ok ") && row("initech").contains(" ok "),
        "{stdout}"
    );
    assert_eq!(fetch(&w, "acme.intelliservice.io", "/").await.0, 200);
    assert!(
        env_files(&w.root().join("examples/web")).is_empty(),
        "no .env file after a failed build"
    );
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn offboarding_removes_the_site_with_the_project() {
    let mut w = World::with_frontend().await;
    w.run_ok(&["apply", "--yes", "--only", "acme"]);
    assert_eq!(fetch(&w, "acme.intelliservice.io", "/").await.0, 200);

    let path = w.root().join("fleet/acme.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, format!("{text}state: deleted\n")).expect("write");
    let refused = w.run(&["plan", "--only", "acme"]);
    let out = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(
        out.contains("and the site intelli-acme on acme.intelliservice.io"),
        "{out}"
    );

    let plan = w.run_ok(&["plan", "--only", "acme", "--allow-delete"]);
    assert!(
        plan.contains("DELETE Pages project intelli-acme and DNS record acme.intelliservice.io"),
        "{plan}"
    );
    w.run_ok(&["apply", "--yes", "--only", "acme", "--allow-delete"]);
    let dump = w.sim.cloudflare().dump().to_string();
    assert!(!dump.contains("intelli-acme"), "Pages project gone");
    assert!(
        !dump.contains("\"acme.intelliservice.io\""),
        "domain and DNS record gone"
    );
    // The project is going down (then removed), never live again.
    assert!(
        w.sim
            .supabase()
            .projects()
            .iter()
            .filter(|p| p.name == "intelli-acme")
            .all(|p| matches!(p.status.as_str(), "GOING_DOWN" | "REMOVED"))
    );
    assert_ne!(
        fetch(&w, "acme.intelliservice.io", "/").await.0,
        200,
        "the site is no longer served"
    );
    let clean = w.run(&[
        "plan",
        "--only",
        "acme",
        "--allow-delete",
        "--detailed-exitcode",
    ]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    w.sim.shutdown().await.expect("shutdown");
}
