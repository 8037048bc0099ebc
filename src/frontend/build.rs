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
    // The child sees a short allow-list of the environment and the client's values, never
    // intelli's own credentials: install scripts and build plugins are third-party code, and a
    // build could inline `process.env` into a public site.
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        if inherited(&k.to_string_lossy()) {
            cmd.env(k, v);
        }
    }
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v.expose_secret());
    }
    let out = cmd.output().await.map_err(|e| CommandError {
        command: command.to_string(),
        status: "could not start".into(),
        tail: e.to_string(),
    })?;
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
