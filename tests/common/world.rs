//! A scratch repository and a simulator for end-to-end tests of the binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use intelli::sim::server::{OrgConfig, SimConfig, SimHandle};

use super::{copy_dir, repo_root};

/// A scratch repository (fleet, migrations, a frontend dir) and a simulator for it.
pub struct World {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    /// Everything the binary printed, for the secret scan.
    pub outputs: Vec<String>,
    /// Whether commands cover the Cloudflare side (see [`World::with_frontend`]).
    pub frontend: bool,
}

impl World {
    pub async fn new() -> World {
        World::configured(|_| {}).await
    }

    /// A world whose simulator settings `tweak` adjusts after the defaults below.
    pub async fn configured(tweak: impl FnOnce(&mut SimConfig)) -> World {
        let mut config = super::sim::seeded(7);
        config.supabase.organizations = vec![OrgConfig {
            slug: "intelliservice".into(),
            name: "IntelliService".into(),
        }];
        config.supabase.provisioning_delay_ms = 300;
        config.cloudflare.account_ids = vec!["0123456789abcdef0123456789abcdef".into()];
        config.cloudflare.zone_names = vec!["intelliservice.io".into()];
        config.cloudflare.domain_activation_delay_ms = 300;
        // Rate-limit windows (and the waits injected 429s ask for) scaled from 60 s to 3 s.
        config.rate_limit_scale = 0.05;
        tweak(&mut config);
        let sim = super::sim::start(config).await;
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&repo_root().join("fleet"), &dir.path().join("fleet"));
        // The example fleet rolls out in waves (a canary first); the tests of everything else
        // run one wave, so their clients move together (tests/rollout_e2e covers the waves).
        let fleet_yaml = dir.path().join("fleet/fleet.yaml");
        let text = std::fs::read_to_string(&fleet_yaml).expect("fleet.yaml");
        std::fs::write(&fleet_yaml, without_rollout(&text)).expect("fleet.yaml");
        copy_dir(
            &repo_root().join("migrations"),
            &dir.path().join("migrations"),
        );
        std::fs::create_dir_all(dir.path().join("examples/web")).expect("frontend dir");
        World {
            sim,
            dir,
            outputs: Vec::new(),
            frontend: false,
        }
    }

    /// A world whose commands also build and deploy the real example frontend (its sources are
    /// copied without node_modules; the fleet's install command runs).
    pub async fn with_frontend() -> World {
        World::with_frontend_configured(|_| {}).await
    }

    /// [`World::with_frontend`] with simulator settings adjusted by `tweak`.
    pub async fn with_frontend_configured(tweak: impl FnOnce(&mut SimConfig)) -> World {
        let mut w = World::configured(tweak).await;
        copy_sources(
            &repo_root().join("examples/web"),
            &w.root().join("examples/web"),
        );
        w.frontend = true;
        w
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The binary, set up to run against the simulator as if it were the real vendor (for
    /// callers that spawn and kill it).
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_intelli"));
        c.current_dir(self.root())
            .env("SUPABASE_ACCESS_TOKEN", self.sim.supabase_token())
            .env("SUPABASE_API_URL", self.sim.supabase_api_url())
            .env(
                "SUPABASE_PROJECT_URL_TEMPLATE",
                self.sim.project_url_template(),
            )
            .env("INTELLI_POLL_MS", "100")
            .env(
                "INTELLI_SKIP_FRONTEND",
                if self.frontend { "false" } else { "true" },
            )
            .env("CLOUDFLARE_API_TOKEN", self.sim.cloudflare_token())
            .env("CLOUDFLARE_API_BASE_URL", self.sim.cloudflare_api_url())
            .env("INTELLI_SITE_PROBE_URL", self.sim.base_url())
            .env("INTELLI_DOMAIN_TIMEOUT_SECS", "30")
            .env("INTELLI_HEALTHY_TIMEOUT_SECS", "60")
            .env_remove("INTELLI_DATABASE_URL_TEMPLATE")
            .env("NO_COLOR", "1");
        c
    }

    /// Run the binary against the simulator as if it were the real vendor.
    pub fn run(&mut self, args: &[&str]) -> Output {
        let out = Command::cargo_bin("intelli")
            .expect("binary")
            .current_dir(self.root())
            .env("SUPABASE_ACCESS_TOKEN", self.sim.supabase_token())
            .env("SUPABASE_API_URL", self.sim.supabase_api_url())
            .env(
                "SUPABASE_PROJECT_URL_TEMPLATE",
                self.sim.project_url_template(),
            )
            .env("INTELLI_POLL_MS", "100")
            .env(
                "INTELLI_SKIP_FRONTEND",
                if self.frontend { "false" } else { "true" },
            )
            .env("CLOUDFLARE_API_TOKEN", self.sim.cloudflare_token())
            .env("CLOUDFLARE_API_BASE_URL", self.sim.cloudflare_api_url())
            .env("INTELLI_SITE_PROBE_URL", self.sim.base_url())
            .env("INTELLI_DOMAIN_TIMEOUT_SECS", "30")
            .env("INTELLI_HEALTHY_TIMEOUT_SECS", "60")
            .env_remove("INTELLI_DATABASE_URL_TEMPLATE")
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .expect("run intelli");
        self.outputs
            .push(String::from_utf8_lossy(&out.stdout).into_owned());
        self.outputs
            .push(String::from_utf8_lossy(&out.stderr).into_owned());
        out
    }

    pub fn run_ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "intelli {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn project_ref(&self, name: &str) -> String {
        let matching: Vec<_> = self
            .sim
            .supabase()
            .projects()
            .into_iter()
            .filter(|p| p.name == name)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "exactly one project named {name}: {matching:?}"
        );
        matching[0].project_ref.clone()
    }

    pub async fn db(&self, project: &str) -> tokio_postgres::Client {
        let r = self.project_ref(project);
        let url = self
            .sim
            .supabase()
            .database_url(&r)
            .expect("project database");
        intelli::pg::connect(&url)
            .await
            .expect("connect to the project's database")
    }

    /// No secret the run could have seen appears in anything it printed or wrote.
    pub fn assert_no_secrets(&self, extra_files: &[PathBuf]) {
        let mut secrets = vec![self.sim.supabase_token(), self.sim.cloudflare_token()];
        for p in self.sim.supabase().projects() {
            if let Some(full) = self.sim.supabase().project(&p.project_ref) {
                secrets.extend(full.keys.all_secrets());
            }
        }
        let mut texts = self.outputs.clone();
        for f in extra_files {
            texts.push(std::fs::read_to_string(f).unwrap_or_default());
        }
        // Any secret key, ours or not, by its shape (the vendor's prefix for secret keys), in
        // every output and every saved file.
        for (i, t) in texts.iter().enumerate() {
            assert!(
                !t.contains("sb_secret_"),
                "output {i} contains an sb_secret_ key"
            );
        }
        for (i, t) in texts.iter().enumerate() {
            for s in &secrets {
                assert!(
                    !s.is_empty() && !t.contains(s.as_str()),
                    "output {i} contains a secret"
                );
            }
            // Generated database passwords are 64 hex characters; the only such strings allowed
            // in output are the digests a plan records (seed and desired state).
            let mut allowed = vec![seed_sha256()];
            for text in &texts {
                if let Some(rest) = text.split("\"desired_digest\": \"").nth(1) {
                    allowed.push(rest.chars().take_while(char::is_ascii_hexdigit).collect());
                }
            }
            for word in t.split(|c: char| !c.is_ascii_hexdigit()) {
                assert!(
                    word.len() < 64 || allowed.iter().any(|a| a == word),
                    "output {i} contains a 64-hex-digit string that is not a known digest"
                );
            }
        }
    }
}

/// `fleet.yaml` text without its `rollout:` section (the last one of the example fleet).
pub fn without_rollout(text: &str) -> String {
    match text.find("\nrollout:") {
        Some(i) => format!("{}\n", text[..i].trim_end()),
        None => text.to_string(),
    }
}

/// Copy a source tree without node_modules and build output.
pub fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        if name == "node_modules" || name == "dist" {
            continue;
        }
        if entry.path().is_dir() {
            copy_sources(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

pub fn seed_sha256() -> String {
    use sha2::Digest;
    let bytes = std::fs::read(repo_root().join("migrations/seed/client.sql")).expect("seed");
    hex::encode(sha2::Sha256::digest(bytes))
}
