//! `intelli reconcile` end to end against the simulator (served as the real vendors): drift
//! made behind intelli's back is corrected on the next tick, `/metrics` is Prometheus text
//! that counts what happened, and SIGTERM during an apply lets the step in flight finish,
//! exits 0, and the next run converges.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::world::World;

/// A running `intelli reconcile` and every stderr line it printed so far.
struct Reconciler {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Reconciler {
    fn start(w: &World, args: &[&str]) -> Reconciler {
        let mut child = w
            .command()
            .arg("reconcile")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn intelli reconcile");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Reconciler { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// The first line (from `from` on) that `pred` accepts, waiting up to `limit` (generous:
    /// the machine is shared; this is not a timing assertion).
    fn wait_line(
        &self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        let start = Instant::now();
        loop {
            let lines = self.lines();
            if let Some((i, l)) = lines.iter().enumerate().skip(from).find(|(_, l)| pred(l)) {
                return (i, l.clone());
            }
            assert!(
                start.elapsed() < limit,
                "no such line within {limit:?}:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        self.child.wait().expect("wait for intelli reconcile")
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parse the Prometheus text format (0.0.4), checking its rules: `# HELP`/`# TYPE` lines name
/// valid metric names, a TYPE is given once and before the family's samples, a family's
/// samples are contiguous, label names are valid and values quoted, every value is a float,
/// counters are named `*_total`. Returns `name{labels}` → value.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let name_ok = |n: &str| {
        let mut cs = n.chars();
        cs.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'), "the page ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(name_ok(name), "bad metric name in {line:?}");
            if kw == "TYPE" {
                let t = parts.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "bad type in {line:?}"
                );
                assert!(!types.contains_key(name), "TYPE given twice for {name}");
                assert!(
                    !finished.iter().any(|f| f == name),
                    "TYPE after samples of {name}"
                );
                if t == "counter" {
                    assert!(name.ends_with("_total"), "counter {name} not named *_total");
                }
                types.insert(name.to_string(), t.to_string());
            }
            continue;
        }
        assert!(!line.is_empty(), "no empty lines");
        let (series, value) = line.rsplit_once(' ').expect("sample: series and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap_or("");
        assert!(name_ok(name), "bad metric name in {line:?}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad labels in {line:?}"));
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label in {line:?}"));
                assert!(name_ok(k) && !k.contains(':'), "bad label name in {line:?}");
                assert!(
                    !v.trim_end_matches('"').contains('"'),
                    "unescaped quote in {line:?}"
                );
            }
        }
        assert!(types.contains_key(name), "sample of {name} before its TYPE");
        if current.as_deref() != Some(name) {
            assert!(
                !finished.iter().any(|f| f == name),
                "samples of {name} not contiguous"
            );
            if let Some(prev) = current.take() {
                finished.push(prev);
            }
            current = Some(name.to_string());
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

async fn get(url: &str) -> (u16, String, String) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, resp.text().await.expect("body"))
}

/// The auth setting the test changes behind intelli's back, as the simulator holds it.
async fn uri_allow_list(w: &World, project_ref: &str) -> String {
    let url = format!(
        "{}/v1/projects/{project_ref}/config/auth",
        w.sim.supabase_api_url()
    );
    let body: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .bearer_auth(w.sim.supabase_token())
        .send()
        .await
        .expect("GET auth config")
        .json()
        .await
        .expect("auth config json");
    body["uri_allow_list"].as_str().unwrap_or("").to_string()
}

fn acme_ref(w: &World) -> String {
    let projects = w.sim.supabase().projects();
    let acme: Vec<_> = projects
        .iter()
        .filter(|p| p.name.ends_with("acme"))
        .collect();
    assert_eq!(acme.len(), 1, "{projects:?}");
    acme[0].project_ref.clone()
}

const LONG: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_corrected_on_the_next_tick_and_metrics_count_it() {
    let w = World::new().await;
    let mut r = Reconciler::start(&w, &["--interval", "1s", "--listen", "127.0.0.1:0"]);
    let (_, serving) = r.wait_line(0, LONG, |l| l.starts_with("serving /healthz"));
    let base = serving.rsplit(' ').next().expect("address").to_string();
    let (first, line) = r.wait_line(0, LONG, |l| {
        l.contains("reconcile run 1 ") && !l.ends_with(" starts")
    });
    assert!(
        line.contains("run 1 ok"),
        "{line}\n{}",
        r.lines().join("\n")
    );

    let auth_updates = |page: &str| {
        parse_prometheus(page)
            .get("intelli_actions_applied_total{kind=\"update_auth_config\"}")
            .copied()
            .unwrap_or_else(|| panic!("auth updates counted:\n{page}"))
    };
    let before = auth_updates(&get(&format!("{base}/metrics")).await.2);

    // Behind intelli's back: an auth setting changed through the vendor's API.
    let project = acme_ref(&w);
    let desired = uri_allow_list(&w, &project).await;
    assert!(desired.contains("localhost:5173"), "{desired}");
    let resp = reqwest::Client::new()
        .patch(format!(
            "{}/v1/projects/{project}/config/auth",
            w.sim.supabase_api_url()
        ))
        .bearer_auth(w.sim.supabase_token())
        .json(&serde_json::json!({ "uri_allow_list": "https://drift.example/**" }))
        .send()
        .await
        .expect("PATCH auth config");
    assert!(resp.status().is_success(), "{:?}", resp.status());

    // A later run applies the correction, and the setting is back.
    let (fixed, line) = r.wait_line(first + 1, LONG, |l| {
        l.contains("reconcile run ") && l.contains("applied 1 action(s) to 1 client(s), 0 failed")
    });
    assert!(line.contains(" ok: "), "{line}");
    assert_eq!(uri_allow_list(&w, &project).await, desired);
    // And the run after it finds nothing to do.
    r.wait_line(fixed + 1, LONG, |l| {
        l.contains("reconcile run ") && l.contains("3 converged")
    });

    let (status, _, body) = get(&format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, content_type, page) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let m = parse_prometheus(&page);
    let at = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("{k} missing:\n{page}"))
    };
    assert_eq!(at("intelli_clients{state=\"converged\"}"), 3.0, "{page}");
    assert_eq!(at("intelli_drift_clients"), 0.0);
    assert_eq!(auth_updates(&page), before + 1.0, "{page}");
    assert!(
        at("intelli_actions_applied_total{kind=\"create_project\"}") >= 3.0,
        "{page}"
    );
    assert!(at("intelli_runs_total{result=\"ok\"}") >= 3.0, "{page}");
    assert_eq!(at("intelli_runs_total{result=\"failed\"}"), 0.0, "{page}");
    assert_eq!(at("intelli_failures_total{kind=\"retry\"}"), 0.0);
    assert!(at("intelli_vendor_requests_total{vendor=\"supabase\"}") > 0.0);
    assert!(
        at("intelli_vendor_requests_total{vendor=\"cloudflare\"}") > 0.0,
        "the lease"
    );
    assert!(at("intelli_last_run_timestamp_seconds") > 1.7e9);
    assert!(m.contains_key("intelli_vendor_rate_limited_total{vendor=\"supabase\"}"));
    assert_eq!(get(&format!("{base}/nope")).await.0, 404);

    // Idle between runs: SIGTERM exits 0 at once.
    let status = r.terminate();
    assert_eq!(status.code(), Some(0), "{}", r.lines().join("\n"));
    eprintln!("the reconciler's log:\n{}", r.lines().join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_an_apply_finishes_the_step_in_flight_and_exits_0() {
    let mut w = World::new().await;
    let mut r = Reconciler::start(&w, &["--interval", "1h"]);
    // The first step started: a client's first action is in flight.
    let (_, started) = r.wait_line(0, LONG, |l| l.ends_with(" …") && l.contains(": "));
    let status = r.terminate();
    let lines = r.lines();
    let log = lines.join("\n");
    assert_eq!(status.code(), Some(0), "{log}");
    // The step in flight finished rather than being cut off.
    let label = started.trim_end_matches(" …");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(label) && l.contains(" done (")),
        "{label} finished:\n{log}"
    );
    let stopped = lines
        .iter()
        .find(|l| l.contains("reconcile run 1 ") && !l.ends_with(" starts"))
        .unwrap_or_else(|| panic!("run 1 summary:\n{log}"));
    assert!(stopped.contains("run 1 stopped"), "{stopped}");
    assert!(
        stopped.contains(", 0 failed; stopped by a signal")
            && stopped.contains("left for the next run"),
        "{stopped}"
    );
    assert!(
        log.contains("SIGTERM: finishing the steps in flight"),
        "{log}"
    );
    // The clients' next steps were not started, and say so: stopped, not failed.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" STOPPED ") && l.contains("not started: the run was stopped (")),
        "{log}"
    );
    assert!(!log.contains("reconcile run 2 "), "{log}");

    // The next run converges, and a plan then finds nothing to do. Its events are JSON lines
    // for a log shipper (`--log-format json`, as apply's): the stopped clients finish now.
    let out = w.run(&["reconcile", "--once", "--log-format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    // reconcile's own lines are `log` events too, and no summary table is printed.
    assert!(
        events.iter().any(|e| e["phase"] == "log"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("reconcile run 1 ok"))),
        "{err}"
    );
    assert!(!err.contains("client  result"), "{err}");
    let finished: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["phase"] == "client").collect();
    assert!(
        !finished.is_empty() && finished.iter().all(|e| e["outcome"] == "ok"),
        "{err}"
    );
    w.run_ok(&["plan", "--detailed-exitcode"]);
    eprintln!("SIGTERM stopped the first run:\n{log}");
}
