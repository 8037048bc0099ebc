//! The example frontend builds with a client's values, and refuses to build without them.
//!
//! Needs Node.js and npm, and `npm ci` done in examples/web (scripts/test does it).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::repo_root;

fn web_dir() -> PathBuf {
    let dir = repo_root().join("examples/web");
    let npm_ok = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        npm_ok,
        "this test needs npm: install Node.js 20.19+ and npm (Debian: apt-get install nodejs npm)"
    );
    assert!(
        dir.join("node_modules/.bin/vite").exists(),
        "examples/web has no node_modules: run `npm ci` in examples/web (scripts/test does it)"
    );
    dir
}

fn build(env: &[(&str, &str)], out: &std::path::Path) -> std::process::Output {
    let mut cmd = Command::new("npm");
    cmd.current_dir(web_dir())
        .args(["run", "build", "--", "--outDir"])
        .arg(out)
        .arg("--emptyOutDir");
    for var in [
        "VITE_SUPABASE_URL",
        "VITE_SUPABASE_ANON_KEY",
        "VITE_CLIENT_NAME",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run npm")
}

fn built_js(out: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(out.join("assets"))
        .expect("assets dir")
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "js") {
            all.push_str(&std::fs::read_to_string(entry.path()).expect("read js"));
        }
    }
    all
}

#[test]
fn builds_with_the_clients_values_baked_in() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("acme"), tmp.path().join("globex"));
    let url_a = "https://acmeacmeacmeacmeacme.supabase.co";
    let url_b = "https://globexglobexglobexglob.supabase.co";
    // Two clients built concurrently from one source tree into their own directories.
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| {
            build(
                &[
                    ("VITE_SUPABASE_URL", url_a),
                    ("VITE_SUPABASE_ANON_KEY", "anon-a"),
                    ("VITE_CLIENT_NAME", "ACME"),
                ],
                &a,
            )
        });
        let hb = s.spawn(|| {
            build(
                &[
                    ("VITE_SUPABASE_URL", url_b),
                    ("VITE_SUPABASE_ANON_KEY", "anon-b"),
                    ("VITE_CLIENT_NAME", "Globex"),
                ],
                &b,
            )
        });
        (ha.join().expect("thread"), hb.join().expect("thread"))
    });
    for (r, name) in [(&ra, "acme"), (&rb, "globex")] {
        assert!(
            r.status.success(),
            "{name} build failed:\n{}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    let (js_a, js_b) = (built_js(&a), built_js(&b));
    assert!(
        js_a.contains(url_a) && js_a.contains("anon-a"),
        "acme's values are in acme's bundle"
    );
    assert!(
        !js_a.contains(url_b),
        "no other client's URL in acme's bundle"
    );
    assert!(js_b.contains(url_b) && !js_b.contains(url_a));
    assert!(a.join("index.html").exists());
    assert!(
        !repo_root().join("examples/web/.env.production").exists(),
        "values travel in the environment, never in a file"
    );
}

#[test]
fn refuses_to_build_without_a_supabase_url() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("dist");
    let r = build(
        &[
            ("VITE_SUPABASE_ANON_KEY", "anon"),
            ("VITE_CLIENT_NAME", "X"),
        ],
        &out,
    );
    assert!(
        !r.status.success(),
        "a build without VITE_SUPABASE_URL must fail"
    );
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("VITE_SUPABASE_URL"),
        "the error names the missing variable:\n{stderr}"
    );
    assert!(!out.join("index.html").exists(), "nothing is shipped");
}
