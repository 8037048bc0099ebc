//! What apply prints while it runs (README "What apply prints while it runs"), one simulator
//! and three applies of one client each: on a terminal (a PTY) the live display and colours;
//! without one the plain line per event; `--log-format json` one object per event, covering
//! every action the plan had. `--color never` and `NO_COLOR` turn colours off on a terminal.

mod common;

use std::collections::BTreeSet;
use std::io::Read;

use common::world::World;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Run `cmd` with a pseudo-terminal as its stdin, stdout and stderr; what it wrote, and whether
/// it succeeded. `no_color`: keep `NO_COLOR` (the world sets it) or remove it.
fn on_terminal(cmd: &std::process::Command, no_color: bool) -> (String, bool) {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 160,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut b = CommandBuilder::new(cmd.get_program());
    b.args(cmd.get_args());
    b.cwd(cmd.get_current_dir().expect("cwd"));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => b.env(k, v),
            None => b.env_remove(k),
        }
    }
    if !no_color {
        b.env_remove("NO_COLOR");
    }
    b.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(b).expect("spawn on the pty");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("pty reader");
    let read = std::thread::spawn(move || {
        let mut buf = Vec::new();
        // Ends with EIO once the child and its children are gone; what was read is kept.
        let _ = reader.read_to_end(&mut buf);
        buf
    });
    let status = child.wait().expect("wait");
    drop(pair.master);
    let out = read.join().expect("reader thread");
    (String::from_utf8_lossy(&out).into_owned(), status.success())
}

/// Any SGR colour sequence (`ESC [ 3x m` and friends).
fn has_colour(s: &str) -> bool {
    ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m"]
        .iter()
        .any(|c| s.contains(c))
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_on_a_terminal_plain_lines_without_and_json_lines() {
    let mut w = World::new().await;

    // A terminal: the live display, coloured, and the summary table as before.
    let mut cmd = w.command();
    cmd.args(["apply", "--yes", "--only", "acme"]);
    let (tty, ok) = on_terminal(&cmd, false);
    assert!(ok, "apply on a terminal failed:\n{tty}");
    assert!(
        tty.contains(" actions · clients "),
        "no overall line:\n{tty}"
    );
    assert!(tty.contains("ETA"), "no ETA:\n{tty}");
    assert!(
        // The client's name is bold on a terminal: its step follows it on the line.
        tty.contains(
            "create project intelli-acme in us-east-1 (small, organization intelliservice) …"
        ),
        "no client line with its step:\n{tty}"
    );
    assert!(tty.contains("\x1b[2K"), "nothing redrawn in place:\n{tty}");
    assert!(has_colour(&tty), "no colour on a terminal:\n{tty}");
    assert!(
        !tty.contains(" done ("),
        "plain lines on a terminal:\n{tty}"
    );
    assert!(tty.contains("Apply complete: 1 client(s)"), "{tty}");

    // Colours off on a terminal with --color never, and with NO_COLOR.
    let mut cmd = w.command();
    cmd.args(["--color", "never", "plan", "--only", "globex"]);
    let (plain, ok) = on_terminal(&cmd, false);
    assert!(
        ok && plain.contains("create project intelli-globex"),
        "{plain}"
    );
    assert!(!has_colour(&plain), "--color never:\n{plain}");
    let mut cmd = w.command();
    cmd.args(["plan", "--only", "globex"]);
    let (plain, ok) = on_terminal(&cmd, true);
    assert!(
        ok && plain.contains("create project intelli-globex"),
        "{plain}"
    );
    assert!(!has_colour(&plain), "NO_COLOR:\n{plain}");

    // Not a terminal: the plain line per event, no escape sequences.
    let out = w.run(&["apply", "--yes", "--only", "globex"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("globex: create project intelli-globex in eu-west-2 (micro, organization intelliservice) …"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("globex: apply ") && l.contains(" done (")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "escape sequences without a terminal:\n{stderr}"
    );

    // --log-format json: every event line parses, and every planned action is reported done.
    let plan_file = w.root().join("initech.json");
    w.run_ok(&[
        "plan",
        "--only",
        "initech",
        "--out",
        plan_file.to_str().expect("utf-8"),
    ]);
    let plan: intelli::plan::Plan =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).expect("plan"))
            .expect("plan json");
    let planned: BTreeSet<String> = plan.clients[0]
        .actions
        .iter()
        .map(|a| intelli::plan::describe(a).headline)
        .collect();
    assert!(planned.len() >= 4, "{planned:?}");
    let out = w.run(&[
        "apply",
        "--yes",
        "--only",
        "initech",
        "--log-format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        for key in [
            "ts",
            "client",
            "action",
            "phase",
            "duration_ms",
            "outcome",
            "message",
        ] {
            assert!(e.get(key).is_some(), "{key} missing: {e}");
        }
    }
    let phase = |p: &'static str| events.iter().filter(move |e| e["phase"] == p);
    assert_eq!(phase("begin").count(), 1, "{stderr}");
    let done: BTreeSet<String> = phase("done")
        .inspect(|e| {
            assert_eq!(e["client"], "initech");
            assert_eq!(e["outcome"], "ok");
            assert!(e["duration_ms"].is_u64(), "{e}");
        })
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect();
    assert!(
        planned.is_subset(&done),
        "planned {planned:?}, done {done:?}"
    );
    let started: BTreeSet<String> = phase("start")
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect();
    assert_eq!(started, done);
    let clients: Vec<&serde_json::Value> = phase("client").collect();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["client"], "initech");
    assert_eq!(clients[0]["outcome"], "ok");
    // The summary's count is the events' count.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "1 client(s), {} action(s) done",
            phase("done").count()
        )),
        "{stdout}"
    );
    w.assert_no_secrets(&[]);
}
