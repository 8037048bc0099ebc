//! Command-line definitions and wiring. No logic lives here beyond choosing what to call and
//! how to print it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::fleet::{self, Fleet};

#[derive(Debug, Parser)]
#[command(
    name = "intelli",
    version,
    about = "GitOps reconciler for a fleet of IntelliService client stacks (Supabase + Cloudflare Pages)",
    long_about = "intelli keeps one Supabase project and one Cloudflare Pages site per client in line with \
                  the YAML files in fleet/. `validate` checks the files offline; `plan` shows what would \
                  change; `apply` makes it so."
)]
pub struct Cli {
    /// Directory holding fleet.yaml and one <client>.yaml per client.
    #[arg(long, global = true, default_value = "fleet", env = "INTELLI_FLEET")]
    pub fleet: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the fleet files offline and list every problem (file:line:column: field: message).
    ///
    /// Exit status 0 when the fleet is valid, 1 otherwise. Reads only the files; needs no
    /// credentials and no network.
    Validate,
    /// Print the JSON Schema of a fleet file kind, generated from intelli's own types.
    ///
    /// Editors use it through the `# yaml-language-server: $schema=…` line at the top of each
    /// fleet file. With --out-dir, write both kinds there (this is how schema/ is refreshed).
    Schema {
        /// Which file kind: `fleet` (fleet.yaml) or `client` (<client>.yaml).
        #[arg(value_parser = ["fleet", "client"], required_unless_present = "out_dir")]
        kind: Option<String>,
        /// Write fleet.schema.json and client.schema.json into this directory instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Run the local simulator of the Supabase and Cloudflare APIs (see `intelli sim serve --help`).
    #[command(subcommand)]
    Sim(crate::sim::serve::SimCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate => Ok(validate(&cli.fleet)),
        Command::Sim(cmd) => crate::sim::serve::run(cmd),
        Command::Schema { kind, out_dir } => {
            if let Some(dir) = out_dir {
                std::fs::create_dir_all(&dir)?;
                for (kind, file) in fleet::schema::KINDS {
                    let text = fleet::schema::render(kind)
                        .ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?;
                    std::fs::write(dir.join(file), text)?;
                    println!("wrote {}", dir.join(file).display());
                }
            } else if let Some(kind) = kind {
                let text = fleet::schema::render(&kind)
                    .ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?;
                print!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(dir: &std::path::Path) -> ExitCode {
    match Fleet::load(dir) {
        Ok(fleet) => {
            let names: Vec<&str> = fleet.clients.keys().map(String::as_str).collect();
            println!(
                "{} is valid: {} client{} ({})",
                dir.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprintln!("{diags}");
            ExitCode::FAILURE
        }
    }
}
