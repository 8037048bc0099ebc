//! Command-line definitions and wiring. No logic lives here beyond choosing what to call and
//! how to print it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::fleet::Fleet;

#[derive(Debug, Parser)]
#[command(
    name = "intelli",
    version = env!("INTELLI_VERSION"),
    about = "GitOps reconciler for a fleet of IntelliService client stacks (Supabase + Cloudflare Pages)",
    long_about = "intelli keeps one Supabase project and one Cloudflare Pages site per client in line with \
                  the YAML files in fleet/. `validate` checks the files offline; `plan` shows what would \
                  change; `apply` makes it so."
)]
pub struct Cli {
    /// Directory holding fleet.yaml and one <client>.yaml per client.
    #[arg(long, global = true, default_value = "fleet", env = "INTELLI_FLEET")]
    pub fleet: PathBuf,

    /// Run against an in-process simulator of Supabase and Cloudflare instead of the real
    /// services, with its state kept under .intelli/sandbox/ (needs PostgreSQL: DATABASE_URL or
    /// 127.0.0.1:5432). Nothing real is touched and no credentials are needed.
    #[arg(long, global = true)]
    #[cfg_attr(not(feature = "sim"), arg(hide = true))]
    pub sandbox: bool,

    /// Colour: `auto` on a terminal unless NO_COLOR is set, `always`, or `never`.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: Color,

    #[command(subcommand)]
    pub command: Command,
}

/// `--color` (clap's side of [`crate::commands::ColorChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// `apply` / `reconcile --log-format` (clap's side of [`crate::commands::LogFormat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// A live display on a terminal, else one plain line per event.
    Text,
    /// One JSON object per event (client, action, phase, duration_ms, outcome, message).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Observe the live state, compare it with fleet/, and print what apply would change.
    ///
    /// Never changes anything. Needs read access only: SUPABASE_ACCESS_TOKEN (and
    /// SUPABASE_API_URL to override the API's address), or --sandbox.
    Plan {
        #[command(flatten)]
        select: SelectArgs,
        /// Output format: text for people, json for machines (schema/plan.schema.json),
        /// markdown for pull-request comments.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also save the plan as JSON, to apply exactly it later with `intelli apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also write the markdown plan as pull-request comments: plan-1.md, plan-2.md, … in
        /// DIR (earlier plan-<n>.md files there are removed), each under --max-comment-bytes,
        /// cut between sections, each starting with a hidden marker `<!-- intelli-plan part
        /// k/n -->` (examples/github/workflows/plan.yml).
        #[arg(long, value_name = "DIR")]
        comment_dir: Option<PathBuf>,
        /// The most bytes a comment part may have, marker included (GitHub allows 65,536
        /// characters; a byte is never fewer).
        #[arg(long, value_name = "N", requires = "comment_dir",
              default_value_t = crate::plan::comment::DEFAULT_MAX_COMMENT_BYTES)]
        max_comment_bytes: usize,
    },
    /// Converge the fleet: do what plan shows, for all selected clients concurrently.
    ///
    /// With a saved plan file, apply exactly that plan, refusing if the fleet files or the
    /// world changed since it was made. Without --yes, asks for confirmation.
    Apply {
        /// A plan saved with `intelli plan --out FILE`.
        plan: Option<PathBuf>,
        #[command(flatten)]
        select: SelectArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        run: RunArgs,
        /// Approve the manual gates of the rollout's waves up to and including WAVE.
        #[arg(long, value_name = "WAVE")]
        through: Option<String>,
        /// Apply only this wave of the rollout (refused unless every earlier wave is converged).
        #[arg(long, value_name = "WAVE")]
        wave: Option<String>,
        /// Also write the summary as markdown to FILE (for a CI job summary:
        /// `cat FILE >> "$GITHUB_STEP_SUMMARY"`).
        #[arg(long, value_name = "FILE")]
        summary_markdown: Option<PathBuf>,
        /// Also write the summary as JSON to FILE (totals, and per client the actions done,
        /// the failure with its policy, notes, time).
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
    },
    /// Check the fleet files offline and list every problem (file:line:column: field: message).
    ///
    /// Exit status 0 when the fleet is valid, 1 otherwise. Reads only the files; needs no
    /// credentials and no network.
    Validate,
    /// Print the JSON Schema of a fleet file kind or of a saved plan, generated from intelli's
    /// own types.
    ///
    /// Editors use the fleet ones through the `# yaml-language-server: $schema=…` line at the
    /// top of each fleet file. With --out-dir, write every kind there (this is how schema/ is
    /// refreshed).
    Schema {
        /// Which kind: `fleet` (fleet.yaml), `client` (<client>.yaml), `plan` (a saved plan),
        /// `status` (`intelli status --format json`) or `summary` (`apply --summary-json`).
        #[arg(value_parser = ["fleet", "client", "plan", "status", "summary"], required_unless_present_any = ["out_dir", "reference"])]
        kind: Option<String>,
        /// Write every kind (fleet, client, plan, status, summary .schema.json) into this
        /// directory instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Print the field-by-field reference of the fleet files as markdown instead
        /// (docs/fleet-reference.md: `intelli schema --reference > docs/fleet-reference.md`).
        #[arg(long, conflicts_with_all = ["kind", "out_dir"])]
        reference: bool,
    },
    /// One row per client: project, migrations, seed, buckets, site, domain, and whether it is
    /// converged, drifting or failing.
    ///
    /// Read-only, and costs the same requests as a no-op `plan`. Exit 0 when every client is
    /// converged, 2 when some drift or have pending changes, 1 when some have errors.
    Status {
        #[command(flatten)]
        select: SelectArgs,
        /// text (a 100-column table), json (schema/status.schema.json), markdown, or html (one
        /// self-contained page with a sortable table and a chart of migration versions).
        #[arg(long, value_enum, default_value = "text")]
        format: StatusFormat,
        /// Write the report to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Converge the fleet continuously: plan then apply at start and every --interval (with
    /// jitter), like a GitOps controller; --once for cron.
    ///
    /// Each run takes the fleet's lease and releases it after. SIGTERM or Ctrl-C lets the steps
    /// in flight finish, starts no new one, and exits 0 (a second signal exits at once). A run
    /// that fails is logged and the loop goes on. --listen serves /healthz and Prometheus
    /// /metrics.
    Reconcile {
        #[command(flatten)]
        select: SelectArgs,
        /// Time between runs (`10m`, `1h30m`, `90s`), each wait varied by ±10%.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        interval: std::time::Duration,
        /// One run, then exit: 0 when every client converged or is converging, 1 when a client
        /// failed or the run could not plan.
        #[arg(long)]
        once: bool,
        /// Serve `/healthz` and `/metrics` (Prometheus text) on this address, e.g.
        /// 127.0.0.1:9464 (port 0 picks one; the address is logged).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Plan again on every save: watches fleet/, the migrations and the frontend directory
    /// (gitignore-aware) and prints only what changed in the plan, or the validation errors.
    ///
    /// Read-only against the real vendors. A burst of saves gives one re-plan. With --sandbox,
    /// --apply also applies each plan (save → converged sandbox). Ctrl-C stops it.
    Watch {
        #[command(flatten)]
        select: SelectArgs,
        /// Apply every plan with changes; only with --sandbox.
        #[arg(long)]
        apply: bool,
        /// Quiet time that ends a burst of changes (`300ms`, `1s`).
        #[arg(long, default_value = "300ms", value_parser = parse_duration)]
        debounce: std::time::Duration,
    },
    /// Adopt clients set up by hand: write fleet/<slug>.yaml from what is observed (project ref
    /// pinned; region, buckets and redirect URLs when they differ from the defaults) and print
    /// the plan for them.
    ///
    /// Never writes to a vendor, never overwrites a client file. `--from clients.json` imports
    /// every entry of the old registry: an array of objects with `slug`, or an object keyed by
    /// slug; each with `project_ref`, optional `domain`, `name` (display name) and
    /// `pages_project`.
    Import {
        /// The client's slug (its file is fleet/<slug>.yaml).
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        slug: Option<String>,
        /// The existing Supabase project's ref.
        #[arg(
            long,
            value_name = "REF",
            required_unless_present = "from",
            conflicts_with = "from"
        )]
        project_ref: Option<String>,
        /// The existing Pages project, when its name is not <name_prefix><slug>.
        #[arg(long, value_name = "NAME", conflicts_with = "from")]
        pages_project: Option<String>,
        /// The client's domain, when it is not <slug>.<base_domain>.
        #[arg(long, value_name = "D", conflicts_with = "from")]
        domain: Option<String>,
        /// Import every entry of this registry instead.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// Plan the Supabase side only (no Cloudflare).
        #[arg(long, env = "INTELLI_SKIP_FRONTEND")]
        skip_frontend: bool,
    },
    /// Run the local simulator of the Supabase and Cloudflare APIs (see `intelli sim serve --help`).
    #[cfg(feature = "sim")]
    #[command(subcommand)]
    Sim(crate::sim::serve::SimCommand),
    /// Not in this build: the simulator is behind the cargo feature `sim` (on by default).
    #[cfg(not(feature = "sim"))]
    Sim {
        /// Whatever follows `sim`, so that every `intelli sim …` gets the same explanation.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Print a shell completion script: `intelli completions bash > /etc/bash_completion.d/intelli`
    /// (zsh: into a directory on `$fpath` as `_intelli`; fish: `~/.config/fish/completions/intelli.fish`;
    /// PowerShell: add it to `$PROFILE`).
    Completions {
        #[arg(value_enum)]
        shell: crate::completions::Shell,
    },
    /// Print the manual page (roff: `intelli man | man -l -`), or write one page per command.
    Man {
        /// Write intelli.1 and intelli-<command>.1 into this directory instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Which clients a command works on, and the flags that widen what it may do.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Only these clients (comma-separated slugs).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// All clients but these (comma-separated slugs).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Apply migration files older than the newest applied one (like `supabase db push --include-all`).
    #[arg(long)]
    pub include_all: bool,
    /// Allow deleting the projects of clients declared `state: deleted`.
    #[arg(long)]
    pub allow_delete: bool,
    /// Work on the Supabase side only (no builds, no Cloudflare; CLOUDFLARE_API_TOKEN not needed).
    #[arg(long, env = "INTELLI_SKIP_FRONTEND")]
    pub skip_frontend: bool,
    /// Only shard K of N (`2/4`): clients are assigned by a hash of their slug, so a client
    /// stays in its shard when others are added. Placement over Cloudflare accounts is still
    /// computed over the whole fleet; apply takes the lease of (fleet, K/N).
    #[arg(long, value_name = "K/N", value_parser = crate::shard::parse)]
    pub shard: Option<crate::shard::Shard>,
}

/// How a command that writes runs: `apply` and `reconcile` (each reconcile run applies).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Clients worked on at once (default: `parallelism` in fleet.yaml).
    #[arg(long)]
    pub parallelism: Option<usize>,
    /// How long to wait for the fleet's lease when another apply holds it (`0`, `90s`, `5m`).
    /// 0 fails at once, naming the holder and since when; under `reconcile` that run fails
    /// and the next one tries again.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// EMERGENCIES ONLY: apply without taking the fleet's lease, so nothing stops another
    /// apply acting on the same clients at the same time (two could create one client's
    /// project twice). Needed when no Cloudflare credentials are set.
    #[arg(long)]
    pub no_lock: bool,
    /// How progress is printed on stderr: `text` (on a terminal, a live display: an overall
    /// bar and one line per running client; otherwise one plain line per event) or `json`
    /// (one JSON object per event, for log shippers).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl RunArgs {
    fn locking(&self) -> crate::commands::Locking {
        crate::commands::Locking {
            timeout: self.lock_timeout,
            disabled: self.no_lock,
        }
    }

    fn log_format(&self) -> crate::commands::LogFormat {
        match self.log_format {
            LogFormat::Text => crate::commands::LogFormat::Text,
            LogFormat::Json => crate::commands::LogFormat::Json,
        }
    }
}

/// `plan --format` (clap's side of [`crate::plan::render::Format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// `status --format` (clap's side of [`crate::status::command::Format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
    Markdown,
    Html,
}

impl From<StatusFormat> for crate::status::command::Format {
    fn from(f: StatusFormat) -> Self {
        match f {
            StatusFormat::Text => crate::status::command::Format::Text,
            StatusFormat::Json => crate::status::command::Format::Json,
            StatusFormat::Markdown => crate::status::command::Format::Markdown,
            StatusFormat::Html => crate::status::command::Format::Html,
        }
    }
}

impl From<Format> for crate::plan::render::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Text => crate::plan::render::Format::Text,
            Format::Json => crate::plan::render::Format::Json,
            Format::Markdown => crate::plan::render::Format::Markdown,
        }
    }
}

impl SelectArgs {
    fn selection(&self) -> crate::commands::Selection {
        crate::commands::Selection {
            only: self.only.clone(),
            exclude: self.exclude.clone(),
            include_all: self.include_all,
            allow_delete: self.allow_delete,
            skip_frontend: self.skip_frontend,
            shard: self.shard,
            rollout: crate::rollout::RolloutOptions::default(),
        }
    }
}

/// Diagnostics on stderr, filtered by `INTELLI_LOG` (e.g. `debug` traces every vendor request with
/// its client, action, method and path template; never a token or key). Default: warnings, such
/// as retries.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INTELLI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::commands::set_color(match cli.color {
        Color::Auto => crate::commands::ColorChoice::Auto,
        Color::Always => crate::commands::ColorChoice::Always,
        Color::Never => crate::commands::ColorChoice::Never,
    });
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Before anything is read, so the answer is the same whatever the fleet holds.
    #[cfg(not(feature = "sim"))]
    if cli.sandbox {
        anyhow::bail!(crate::NO_SIM);
    }
    match cli.command {
        Command::Validate => Ok(validate(&cli.fleet)),
        Command::Plan {
            select,
            format,
            out,
            detailed_exitcode,
            comment_dir,
            max_comment_bytes,
        } => runtime()?.block_on(crate::commands::plan_cmd(
            &cli.fleet,
            cli.sandbox,
            &select.selection(),
            crate::commands::PlanOutput {
                format: format.into(),
                out,
                detailed_exitcode,
                comments: comment_dir.map(|dir| crate::commands::Comments {
                    dir,
                    max_bytes: max_comment_bytes,
                }),
            },
        )),
        Command::Apply {
            plan,
            select,
            yes,
            run,
            through,
            wave,
            summary_markdown,
            summary_json,
        } => runtime()?.block_on(crate::commands::apply_cmd(
            &cli.fleet,
            cli.sandbox,
            &crate::commands::Selection {
                rollout: crate::rollout::RolloutOptions { through, wave },
                ..select.selection()
            },
            plan,
            crate::commands::ApplyOptions {
                yes,
                parallelism: run.parallelism,
                locking: run.locking(),
                summary_markdown,
                summary_json,
                log_format: run.log_format(),
            },
        )),
        Command::Status {
            select,
            format,
            out,
        } => runtime()?.block_on(crate::status::command::status_cmd(
            &cli.fleet,
            cli.sandbox,
            &select.selection(),
            format.into(),
            out,
        )),
        Command::Reconcile {
            select,
            interval,
            once,
            listen,
            run,
        } => runtime()?.block_on(crate::reconcile::reconcile_cmd(
            &cli.fleet,
            cli.sandbox,
            &select.selection(),
            &crate::reconcile::Options {
                interval,
                jitter: 0.1,
                once,
                listen,
                parallelism: run.parallelism,
                locking: run.locking(),
                log_format: run.log_format(),
            },
        )),
        Command::Import {
            slug,
            project_ref,
            pages_project,
            domain,
            from,
            skip_frontend,
        } => {
            let entries =
                match crate::import::entries(slug, project_ref, pages_project, domain, from)? {
                    Ok(entries) => entries,
                    Err(diags) => {
                        eprintln!("{diags}");
                        return Ok(ExitCode::FAILURE);
                    }
                };
            let sel = crate::commands::Selection {
                skip_frontend,
                ..crate::commands::Selection::default()
            };
            runtime()?.block_on(crate::import::import_cmd(
                &cli.fleet,
                cli.sandbox,
                &sel,
                entries,
            ))
        }
        Command::Watch {
            select,
            apply,
            debounce,
        } => runtime()?.block_on(crate::watch::watch_cmd(
            &cli.fleet,
            cli.sandbox,
            &select.selection(),
            crate::watch::Options { apply, debounce },
        )),
        #[cfg(feature = "sim")]
        Command::Sim(cmd) => crate::sim::serve::run(cmd, &cli.fleet),
        #[cfg(not(feature = "sim"))]
        Command::Sim { .. } => anyhow::bail!(crate::NO_SIM),
        Command::Completions { shell } => {
            crate::completions::run_completions(shell)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir } => {
            crate::completions::run_man(out_dir.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema {
            kind,
            out_dir,
            reference,
        } => {
            if reference {
                print!("{}", crate::schema::reference::render());
            } else if let Some(dir) = out_dir {
                std::fs::create_dir_all(&dir)?;
                for (kind, file) in crate::schema::KINDS {
                    let text = crate::schema::render(kind)
                        .ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?;
                    std::fs::write(dir.join(file), text)?;
                    println!("wrote {}", dir.join(file).display());
                }
            } else if let Some(kind) = kind {
                let text = crate::schema::render(&kind)
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

/// A duration as `--lock-timeout` and `--interval` take it, humantime-style: whole seconds
/// (`30`), or numbers each with a unit `ms`, `s`, `m`, `h` or `d`, run together (`90s`, `5m`,
/// `1h30m`, `500ms`).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| format!("{text:?} is too large"));
    }
    let bad = || format!("{text:?} is not a duration: use e.g. 0, 90s, 5m, 1h30m or 500ms");
    let mut total = std::time::Duration::ZERO;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let part = match &after[..unit_len] {
            "ms" => std::time::Duration::from_millis(n),
            "s" => std::time::Duration::from_secs(n),
            "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
            "h" => std::time::Duration::from_secs(n.saturating_mul(3600)),
            "d" => std::time::Duration::from_secs(n.saturating_mul(86_400)),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
                ));
            }
        };
        total = total.saturating_add(part);
        rest = &after[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn lock_timeout_forms() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5m3").is_err());
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }
}
