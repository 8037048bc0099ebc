//! `intelli completions SHELL` and `intelli man`: shell completions (clap_complete) and manual
//! pages (clap_mangen), both generated from the clap definitions in `cli`, so they never lag
//! behind the commands.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

/// Shells `intelli completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl From<Shell> for clap_complete::Shell {
    fn from(s: Shell) -> Self {
        match s {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
            Shell::Powershell => clap_complete::Shell::PowerShell,
        }
    }
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::from(shell),
        &mut cmd,
        "intelli",
        &mut out,
    );
    out
}

/// The manual page of `intelli` itself (roff), subcommands listed.
pub fn man_page() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(crate::cli::Cli::command())
        .render(&mut out)
        .context("rendering the manual page")?;
    Ok(out)
}

/// `intelli man`: the page on stdout, or every page (`intelli.1`, `intelli-plan.1`, …) in `dir`.
pub fn run_man(out_dir: Option<&Path>) -> Result<()> {
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(crate::cli::Cli::command(), dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
            eprintln!("wrote the manual pages into {}", dir.display());
        }
        None => std::io::stdout()
            .write_all(&man_page()?)
            .context("writing the manual page")?,
    }
    Ok(())
}

/// `intelli completions SHELL`: the script on stdout.
pub fn run_completions(shell: Shell) -> Result<()> {
    std::io::stdout()
        .write_all(&completions(shell))
        .context("writing the completion script")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visible subcommands of `intelli`, from the clap definitions.
    fn subcommands() -> Vec<String> {
        crate::cli::Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_string())
            .collect()
    }

    #[test]
    fn every_shell_completes_every_subcommand() {
        let names = subcommands();
        assert!(names.iter().any(|n| n == "completions"), "{names:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            let script = String::from_utf8(completions(shell)).expect("utf-8");
            assert!(script.len() > 200, "{shell:?}: {script}");
            for name in &names {
                assert!(script.contains(name.as_str()), "{shell:?} lacks `{name}`");
            }
        }
    }

    #[test]
    fn the_man_page_lists_every_subcommand() {
        let page = String::from_utf8(man_page().expect("man")).expect("utf-8");
        assert!(
            page.starts_with(".ie") || page.contains(".TH intelli"),
            "{page}"
        );
        for name in subcommands() {
            assert!(page.contains(&name), "the man page lacks `{name}`");
        }
    }
}
