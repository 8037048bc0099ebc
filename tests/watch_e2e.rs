//! `intelli watch` end to end against the simulator (served as the real vendors): a new
//! migration file is re-planned and only the plan's changes are printed; a burst of saves gives
//! one re-plan; ignored files give none; invalid files print located errors; Ctrl-C exits 0;
//! `--apply` is refused without `--sandbox`. Re-plans are counted, never timed (the waits are
//! generous limits on a shared machine).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::world::World;

const LIMIT: Duration = Duration::from_secs(60);

/// A running `intelli watch`, and every stdout line it printed so far with when it came.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    fn start(w: &World, args: &[&str]) -> Watcher {
        let mut child = w
            .command()
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn intelli watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push((Instant::now(), line));
            }
        });
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = stderr_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("stderr").push(line);
            }
        });
        Watcher {
            child,
            lines,
            stderr: stderr_lines,
        }
    }

    fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().expect("lines");
        lines.iter().map(|(_, l)| l.clone()).collect()
    }

    /// The first line from `from` on that `pred` accepts: its index and when it was read.
    fn wait_line(&self, from: usize, pred: impl Fn(&str) -> bool) -> (usize, Instant) {
        let start = Instant::now();
        loop {
            {
                let lines = self.lines.lock().expect("lines");
                if let Some((i, (at, _))) = lines
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, (_, l))| pred(l))
                {
                    return (i, *at);
                }
            }
            assert!(
                start.elapsed() < LIMIT,
                "no such line within {LIMIT:?}:\n{}\nstderr:\n{}",
                self.lines().join("\n"),
                self.stderr.lock().expect("stderr").join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The re-plan headings printed so far (`[hh:mm:ss] plan N…`).
    fn headings(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with('[') && l.contains("] plan "))
            .collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn heading(n: u32) -> impl Fn(&str) -> bool {
    move |l: &str| l.starts_with('[') && l.contains(&format!("] plan {n}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_replans_on_save_once_per_burst_and_stops_on_ctrl_c() {
    let mut w = World::new().await;
    w.run_ok(&["apply", "--yes"]);
    // Build output and editor files: never a reason to plan again.
    std::fs::write(w.root().join(".gitignore"), "dist/\n").expect("gitignore");
    let migrations = w.root().join("migrations");

    let mut watch = Watcher::start(&w, &[]);
    watch.wait_line(0, heading(1));
    let (end_of_first, _) = watch.wait_line(0, |l| l.starts_with("Plan: 0 actions"));

    // A new migration: the re-plan prints only what changed.
    let saved = Instant::now();
    std::fs::write(
        migrations.join("29990101000000_watch_probe.sql"),
        "create table public.watch_probe (id int primary key);\n",
    )
    .expect("write migration");
    let (h2, _) = watch.wait_line(end_of_first, heading(2));
    let (_, shown) = watch.wait_line(h2, |l| l.starts_with('+') && l.contains("29990101000000"));
    eprintln!(
        "watch latency, save to printed diff: {} ms (debounce 300 ms)",
        shown.duration_since(saved).as_millis()
    );
    let lines = watch.lines();
    assert!(
        lines[h2].contains("after changes to migrations/29990101000000_watch_probe.sql"),
        "{}",
        lines[h2]
    );
    let (next, _) = watch.wait_line(h2, |l| l.starts_with("+Plan: "));
    let diff = &lines[h2 + 1..=next.min(lines.len() - 1)];
    assert!(
        diff.iter()
            .all(|l| l.starts_with('+') || l.starts_with('-') || l.starts_with("@@")),
        "only changed lines:\n{}",
        diff.join("\n")
    );
    assert!(
        diff.iter().any(|l| l.starts_with("-Plan: 0 actions")),
        "{}",
        diff.join("\n")
    );

    // Five saves in 200 ms: one re-plan naming all of them.
    for i in 2..=6 {
        std::fs::write(
            migrations.join(format!("2999010{i}000000_burst.sql")),
            format!("create table public.burst_{i} (id int);\n"),
        )
        .expect("write migration");
        std::thread::sleep(Duration::from_millis(40));
    }
    let (h3, _) = watch.wait_line(h2, heading(3));
    // An ignored file, then (well after) one more save: the next re-plan is that save's.
    std::fs::create_dir_all(w.root().join("examples/web/dist")).expect("mkdir");
    std::fs::write(w.root().join("examples/web/dist/index.html"), "<p>").expect("write");
    std::fs::write(migrations.join("README.md"), "notes\n").expect("write");
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(
        migrations.join("29990107000000_after.sql"),
        "create table public.after_burst (id int);\n",
    )
    .expect("write migration");
    let (h4, _) = watch.wait_line(h3, heading(4));
    let lines = watch.lines();
    assert!(
        lines[h3].contains("29990102000000_burst.sql") && lines[h3].contains("1 more"),
        "the burst is one re-plan: {}",
        lines[h3]
    );
    assert!(
        lines[h4].contains("after changes to migrations/29990107000000_after.sql:"),
        "the ignored files gave no re-plan: {}",
        lines[h4]
    );
    assert_eq!(watch.headings().len(), 4, "{:#?}", watch.headings());

    // Invalid files: the located errors instead of a plan; fixed: the plan again.
    let acme = w.root().join("fleet/acme.yaml");
    let good = std::fs::read_to_string(&acme).expect("acme");
    std::fs::write(
        &acme,
        good.replace("region: us-east-1", "regoin: us-east-1"),
    )
    .expect("break acme");
    let (h5, _) = watch.wait_line(h4, heading(5));
    assert!(watch.lines()[h5].contains("the files are not valid"));
    watch.wait_line(h5, |l| l.contains("acme.yaml:") && l.contains("regoin"));
    std::fs::write(&acme, &good).expect("fix acme");
    watch.wait_line(h5, heading(6));

    // Ctrl-C: a clean stop.
    let pid = libc::pid_t::try_from(watch.child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = watch.child.wait().expect("wait for intelli watch");
    assert_eq!(status.code(), Some(0));
    w.outputs.push(watch.lines().join("\n"));
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_apply_needs_the_sandbox() {
    let mut w = World::new().await;
    let out = w.run(&["watch", "--apply"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only with --sandbox"), "{err}");
    assert!(out.stdout.is_empty());
}
