//! Running the install command once and the build command per client.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

/// Lines of output shown when a command fails.
const TAIL_LINES: usize = 40;

/// A failed command, with the end of its output (stdout and stderr interleaved by stream).
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{command}` failed ({status}):\n{tail}")]
pub struct CommandError {
    pub command: String,
    pub status: String,
    pub tail: String,
}

/// Run `command` through `sh -c` in `dir` with `env` added; output is captured, and shown
/// (its last lines) only on failure. Values in `env` never touch the disk.
pub async fn run(
    dir: &Path,
    command: &str,
    env: &BTreeMap<String, SecretString>,
) -> Result<(), CommandError> {
    let mut cmd = Command::new("sh");
    lifetime::tie_to_intelli(&mut cmd);
    // The child sees a short allow-list of the environment and the client's values, never
    // intelli's own credentials: install scripts and build plugins are third-party code, and a
    // build could inline `process.env` into a public site.
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        if inherited(&k.to_string_lossy()) {
            cmd.env(k, v);
        }
    }
    cmd.args(lifetime::wrap(command))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v.expose_secret());
    }
    let child = cmd.spawn().map_err(|e| CommandError {
        command: command.to_string(),
        status: "could not start".into(),
        tail: e.to_string(),
    })?;
    // Dropped before the command ends (the apply was cancelled): its whole process group dies.
    let group = lifetime::GroupGuard::new(child.id());
    let out = child.wait_with_output().await.map_err(|e| CommandError {
        command: command.to_string(),
        status: "could not be waited for".into(),
        tail: e.to_string(),
    })?;
    group.disarm();
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let redacted = redact_env(&text, env);
    let lines: Vec<&str> = redacted.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    Err(CommandError {
        command: command.to_string(),
        status: out.status.to_string(),
        tail,
    })
}

/// Child processes that die with intelli.
///
/// A `kill -9` of intelli must not leave `npm` writing into `node_modules` (the next install
/// would then fail with `ENOTEMPTY`). On Unix every command runs in its own process group,
/// under a small `sh` wrapper; on Linux the wrapper gets `PR_SET_PDEATHSIG` (SIGTERM), so when
/// intelli dies for any reason the kernel signals it, and its trap kills the whole group with
/// SIGKILL (npm's own children included: the death signal alone reaches only the direct
/// child). When intelli cancels a command itself, [`GroupGuard`] kills the group on drop.
mod lifetime {
    use tokio::process::Command;

    /// The arguments of `sh` that run `command` in the background of a wrapper which kills its
    /// process group when it is signalled, and otherwise exits with the command's status.
    pub fn wrap(command: &str) -> [&str; 4] {
        [
            "-c",
            "trap 'trap - TERM INT HUP; kill -KILL 0' TERM INT HUP; sh -c \"$1\" & wait $!",
            "intelli-child",
            command,
        ]
    }

    #[cfg(unix)]
    pub fn tie_to_intelli(cmd: &mut Command) {
        // Its own group: `kill(-pgid)` reaches every process the command starts.
        cmd.process_group(0);
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id();
            // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
            // functions (prctl, getppid), allocating nothing.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // intelli died between fork and prctl: the signal would never come.
                    if libc::getppid() as u32 != parent {
                        return Err(std::io::Error::other("intelli exited"));
                    }
                    Ok(())
                });
            }
        }
    }

    #[cfg(not(unix))]
    pub fn tie_to_intelli(_cmd: &mut Command) {}

    /// Kills the command's process group when dropped, unless [`GroupGuard::disarm`]ed after
    /// the command ended.
    pub struct GroupGuard(Option<u32>);

    impl GroupGuard {
        pub fn new(pid: Option<u32>) -> GroupGuard {
            GroupGuard(pid)
        }

        pub fn disarm(mut self) {
            self.0 = None;
        }
    }

    impl Drop for GroupGuard {
        fn drop(&mut self) {
            #[cfg(unix)]
            if let Some(pid) = self.0.and_then(|p| libc::pid_t::try_from(p).ok()) {
                // SAFETY: a plain syscall; ESRCH (the group is gone) is fine.
                unsafe {
                    libc::killpg(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Variables a build or install legitimately needs from intelli's environment.
fn inherited(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "HOME"
            | "USER"
            | "LOGNAME"
            | "SHELL"
            | "TMPDIR"
            | "TMP"
            | "TEMP"
            | "LANG"
            | "TERM"
            | "CI"
            | "TZ"
    ) || name.starts_with("LC_")
        || name.starts_with("NODE_")
        || name.starts_with("npm_config_")
        || name.starts_with("NPM_CONFIG_")
        || name.starts_with("XDG_")
}

/// A build tool may echo its environment; the values that are secret-ish must not reach logs.
fn redact_env(text: &str, env: &BTreeMap<String, SecretString>) -> String {
    let mut out = text.to_string();
    for (k, v) in env {
        let v = v.expose_secret();
        if k.contains("KEY") && v.len() >= 8 {
            out = out.replace(v, "[REDACTED]");
        }
    }
    out
}

/// Build one client's site into `out_dir` and return it.
///
/// With `{out_dir}` in the build command the build writes there directly (and may run beside
/// other clients' builds); without it, the caller must serialise builds, and the frontend's own
/// `output_dir` is moved to `out_dir` afterwards.
pub async fn build_client(
    frontend_dir: &Path,
    build_command: &str,
    output_dir: &str,
    env: &BTreeMap<String, SecretString>,
    out_dir: &Path,
) -> Result<PathBuf, CommandError> {
    let templated = build_command.contains("{out_dir}");
    let command = build_command.replace("{out_dir}", &shell_quote(&out_dir.to_string_lossy()));
    let produced = frontend_dir.join(output_dir);
    // A previous client's output must never end up in this client's site.
    if !templated && produced.exists() {
        std::fs::remove_dir_all(&produced).map_err(|e| CommandError {
            command: command.clone(),
            status: "not started".into(),
            tail: format!("could not clear {}: {e}", produced.display()),
        })?;
    }
    run(frontend_dir, &command, env).await?;
    if !templated {
        copy_tree(&produced, out_dir).map_err(|e| CommandError {
            command: command.clone(),
            status: "succeeded".into(),
            tail: format!(
                "but its output {} could not be collected: {e}",
                produced.display()
            ),
        })?;
    }
    Ok(out_dir.to_path_buf())
}

pub fn supports_parallel_builds(build_command: &str) -> bool {
    build_command.contains("{out_dir}")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
