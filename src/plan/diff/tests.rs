//! Table-driven tests of the planner: each row is a client as the fleet declares it, the state
//! observed (built from [`Obs::converged`], the state in which nothing is to do, with one thing
//! changed), and the actions, with their reasons, the plan must contain. Together the rows
//! plan every action kind and give every reason (`every_kind_and_reason_is_planned`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Desired, FrontendDesired, PlanOptions, plan_client};
use crate::cloudflare::types::DomainStatus;

use crate::fleet::{ClientSpec, ClientState, Fleet, LegacyKeys};
use crate::frontend::Fingerprint;
use crate::migrate::MigrationFile;
use crate::migrate::history::{AppliedMigration, statements_digest, statements_of};
use crate::observe::{
    BucketRow, DyingProject, ObservedAuth, ObservedClient, ObservedDatabase, ObservedDns,
    ObservedKeys, ObservedPages, ObservedProject, SeedRow,
};
use crate::plan::coverage;
use crate::plan::model::{
    Action, ClientPlan, DeploymentRef, DnsRecordValue, PreviousDeployment, Reason,
};
use crate::supabase::BrowserKeyKind;
use crate::supabase::types::ProjectStatus;

/// The example fleet's Cloudflare account (`fleet/fleet.yaml`), where acme's site is placed.
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

const REF: &str = "abcdefghijklmnopqrst";
const OTHER_KEY_SHA: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
const ANON_SHA: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
const SOURCES: &str = "5050505050505050505050505050505050505050505050505050505050505050";
const URL_TEMPLATE: &str = "https://{ref}.supabase.co";
const SEED_PATH: &str = "migrations/seed/client.sql";
/// A Pages deployment id, as a live deployment records its predecessor.
const PREV_ID: &str = "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a";
/// Two more deployment ids, for the chain a live deployment records, and the live one's.
const ONE_ID: &str = "1c6b4f3d-2a1e-4d2f-8b8c-4a3f2e1d0c9b";
const TWO_ID: &str = "2d7c5a4e-3b2f-4e3a-9c9d-5b4a3f2e1d0c";
const LIVE_ID: &str = "9f8e7d6c-0000-4000-8000-000000000001";
const SEED_SHA: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

/// The example fleet (fleet/ in the repository), its client `acme`, and two migrations.
struct Fixture {
    fleet: Fleet,
    migrations: Vec<MigrationFile>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fleet");
        let fleet = Fleet::load(&dir).unwrap_or_else(|d| panic!("example fleet: {d}"));
        let migration = |version: &str, sql: &str| MigrationFile {
            version: version.into(),
            name: "m".into(),
            path: PathBuf::from(format!("migrations/{version}_m.sql")),
            sql: sql.into(),
        };
        Fixture {
            fleet,
            migrations: vec![
                migration("20250101000000", "create table a (id int);"),
                migration("20250102000000", "create table b (id int);"),
            ],
        }
    }

    fn spec(&self) -> ClientSpec {
        self.fleet.clients["acme"].clone()
    }

    /// The client's build-time extras as `plan` gets them (literal values only in acme.yaml).
    fn extras(&self) -> BTreeMap<String, String> {
        let spec = self.spec();
        self.fleet
            .resolve_env(&spec, |_| None)
            .unwrap_or_else(|d| panic!("acme's env: {d}"))
    }

    fn desired(&self, frontend: bool) -> Desired<'_> {
        Desired {
            fleet: &self.fleet,
            migrations: &self.migrations,
            seed_path: SEED_PATH.into(),
            seed_sha256: SEED_SHA.into(),
            digest: "d".repeat(64),
            frontend: frontend.then(|| FrontendDesired {
                source_digest: SOURCES.into(),
                project_url_template: URL_TEMPLATE.into(),
                client_env: [("acme".to_string(), Ok(self.extras()))].into(),
                accounts: [("acme".to_string(), ACCOUNT.to_string())].into(),
            }),
        }
    }

    /// The fingerprint `plan` expects for acme's site, with other sources or values if asked.
    fn fingerprint(&self, sources: &str, extras: &BTreeMap<String, String>) -> Fingerprint {
        let spec = self.spec();
        Fingerprint {
            sources: sources.into(),
            env: crate::frontend::env_digest_plain(&crate::frontend::build_values(
                &URL_TEMPLATE.replace("{ref}", REF),
                ANON_SHA,
                &spec.display_name,
                extras,
            )),
        }
    }
}

/// An observed-state builder: [`Obs::converged`] is a client in which nothing is to do; each
/// method changes one thing.
struct Obs(ObservedClient);

impl Obs {
    /// Nothing exists.
    fn nothing() -> Obs {
        Obs(ObservedClient::default())
    }

    fn converged(fx: &Fixture) -> Obs {
        let spec = fx.spec();
        let applied = fx
            .migrations
            .iter()
            .map(|m| AppliedMigration {
                version: m.version.clone(),
                name: Some(m.name.clone()),
                statements_sha256: Some(statements_digest(&statements_of(m))),
                statements: None,
            })
            .collect();
        let buckets = spec
            .buckets
            .iter()
            .map(|(name, b)| BucketRow {
                id: name.clone(),
                public: b.public,
                file_size_limit: b.file_size_limit,
                allowed_mime_types: Some(b.allowed_mime_types.clone()),
            })
            .collect();
        let fp = fx.fingerprint(SOURCES, &fx.extras());
        Obs(ObservedClient {
            project: Some(ObservedProject {
                project_ref: REF.into(),
                name: spec.resource_name.clone(),
                status: ProjectStatus::ActiveHealthy,
                region: spec.region.clone(),
            }),
            duplicates: vec![],
            dying: vec![],
            auth: Some(ObservedAuth {
                site_url: Some(spec.site_url.clone()),
                redirect_urls: spec.redirect_urls.clone(),
            }),
            database: Some(ObservedDatabase {
                migrations: applied,
                seeds: vec![SeedRow {
                    path: SEED_PATH.into(),
                    hash: SEED_SHA.into(),
                }],
                buckets,
                seed_present: None,
            }),
            error: None,
            anon_key_sha256: Some(ANON_SHA.into()),
            keys: Some(ObservedKeys {
                publishable: true,
                service_secret: true,
                legacy_listed: false,
                legacy_enabled: None,
                browser: Some(BrowserKeyKind::Publishable),
            }),
            site: crate::observe::ObservedSite {
                pages: Some(ObservedPages {
                    name: spec.pages_project.clone(),
                    subdomain: format!("{}.pages.dev", spec.pages_project),
                    production_branch: fx.fleet.settings.cloudflare.production_branch.clone(),
                    domains: vec![spec.domain.clone()],
                    live_commit_message: Some(fp.commit_message()),
                    live_deployment_id: None,
                    live_commit_hash: None,
                    live_deployed_on: None,
                }),
                dns: Some(ObservedDns {
                    id: "rec1".into(),
                    record_type: "CNAME".into(),
                    content: format!("{}.pages.dev", spec.pages_project),
                    proxied: true,
                    comment: Some(crate::plan::ownership::active_comment(&spec.slug)),
                }),
                domain_status: Some(DomainStatus::Active),
                error: None,
            },
        })
    }

    fn with(mut self, f: impl FnOnce(&mut ObservedClient)) -> Obs {
        f(&mut self.0);
        self
    }

    fn status(self, status: ProjectStatus) -> Obs {
        self.with(|o| {
            if let Some(p) = o.project.as_mut() {
                p.status = status;
            }
        })
    }

    /// No project (and so nothing read from one), the site as it is.
    fn no_project(self) -> Obs {
        self.with(|o| {
            o.project = None;
            o.auth = None;
            o.database = None;
            o.anon_key_sha256 = None;
            o.keys = None;
        })
    }

    fn keys(self, f: impl FnOnce(&mut ObservedKeys)) -> Obs {
        self.with(|o| f(o.keys.get_or_insert_with(Default::default)))
    }

    /// The legacy keys listed and on.
    fn legacy_on(self) -> Obs {
        self.keys(|k| {
            k.legacy_listed = true;
            k.legacy_enabled = Some(true);
        })
    }

    /// The project has no publishable key: the browser key is the legacy anon key (another
    /// digest), and the live site was built with the publishable key it had before.
    fn no_publishable(self) -> Obs {
        self.legacy_on()
            .keys(|k| {
                k.publishable = false;
                k.browser = Some(BrowserKeyKind::LegacyAnon);
            })
            .with(|o| o.anon_key_sha256 = Some(OTHER_KEY_SHA.into()))
    }

    /// The live site was built with another browser key (the legacy anon key).
    fn live_with_other_key(self, fx: &Fixture) -> Obs {
        let mut fp = fx.fingerprint(SOURCES, &fx.extras());
        fp.env = crate::frontend::env_digest_plain(&crate::frontend::build_values(
            &URL_TEMPLATE.replace("{ref}", REF),
            OTHER_KEY_SHA,
            &fx.spec().display_name,
            &fx.extras(),
        ));
        self.live(Some(fp.commit_message()))
    }

    fn db(self, f: impl FnOnce(&mut ObservedDatabase)) -> Obs {
        self.with(|o| f(o.database.get_or_insert_with(Default::default)))
    }

    fn pages(self, f: impl FnOnce(&mut ObservedPages)) -> Obs {
        self.with(|o| {
            if let Some(p) = o.site.pages.as_mut() {
                f(p);
            }
        })
    }

    fn dns(self, f: impl FnOnce(&mut Option<ObservedDns>)) -> Obs {
        self.with(|o| f(&mut o.site.dns))
    }

    fn live(self, message: Option<String>) -> Obs {
        self.pages(|p| p.live_commit_message = message)
    }
}

/// One row: how the client is declared, what was observed, what the plan must do.
struct Case {
    name: &'static str,
    spec: fn(&mut ClientSpec),
    obs: fn(&Fixture) -> Obs,
    opts: PlanOptions,
    frontend: bool,
    /// `(action, reason)` in plan order.
    want: &'static [(&'static str, Reason)],
    /// A fragment of each expected error.
    errors: &'static [&'static str],
    /// The fleet says `supabase.legacy_keys: disable`.
    disable_legacy: bool,
}

const ALLOW_DELETE: PlanOptions = PlanOptions {
    include_all: false,
    allow_delete: true,
};

fn keep(_: &mut ClientSpec) {}

/// A project gone (or dying) under a live site: everything is made again, and the site waits for
/// the new project.
const REBUILT_WITH_PROJECT: &[(&str, Reason)] = &[
    ("create_project", Reason::Missing),
    ("update_auth_config", Reason::Missing),
    ("create_bucket", Reason::Missing),
    ("create_bucket", Reason::Missing),
    ("apply_migrations", Reason::MigrationsPending),
    ("apply_seed", Reason::SeedNotApplied),
    ("deploy", Reason::ProjectBeingCreated),
];

fn cases() -> Vec<Case> {
    use Reason::*;
    let case = |name, obs: fn(&Fixture) -> Obs, want| Case {
        name,
        spec: keep,
        obs,
        opts: PlanOptions::default(),
        frontend: true,
        want,
        errors: &[],
        disable_legacy: false,
    };
    vec![
        case("converged: nothing to do", Obs::converged, &[]),
        case(
            "new client: everything, the site built once the project exists",
            |_| Obs::nothing(),
            &[
                ("create_project", Missing),
                ("update_auth_config", Missing),
                ("create_bucket", Missing),
                ("create_bucket", Missing),
                ("apply_migrations", MigrationsPending),
                ("apply_seed", SeedNotApplied),
                ("create_pages_project", Missing),
                ("deploy", NeverDeployed),
                ("add_domain", Missing),
                ("upsert_dns_record", Missing),
                ("wait_for_domain", DomainNotActive),
            ],
        ),
        case(
            "project gone, site live: rebuilt once the project exists",
            |fx| Obs::converged(fx).no_project(),
            REBUILT_WITH_PROJECT,
        ),
        case(
            "provisioning: wait, the site left as it is",
            |fx| Obs::converged(fx).status(ProjectStatus::ComingUp),
            &[("wait_until_healthy", ProjectNotReady)],
        ),
        case(
            "paused but declared active: restore",
            |fx| Obs::converged(fx).status(ProjectStatus::Inactive),
            &[("restore_project", DeclaredActive)],
        ),
        Case {
            spec: |s| s.state = ClientState::Paused,
            ..case(
                "declared paused: pause",
                Obs::converged,
                &[("pause_project", DeclaredPaused)],
            )
        },
        Case {
            spec: |s| s.state = ClientState::Paused,
            ..case(
                "declared paused and paused: nothing",
                |fx| Obs::converged(fx).status(ProjectStatus::Inactive),
                &[],
            )
        },
        Case {
            spec: |s| s.state = ClientState::Deleted,
            opts: ALLOW_DELETE,
            ..case(
                "declared deleted with --allow-delete: project and site",
                Obs::converged,
                &[
                    ("delete_project", DeclaredDeleted),
                    ("delete_site", DeclaredDeleted),
                ],
            )
        },
        Case {
            spec: |s| s.state = ClientState::Deleted,
            errors: &["re-run with --allow-delete"],
            ..case(
                "declared deleted without --allow-delete: refused",
                Obs::converged,
                &[],
            )
        },
        Case {
            spec: |s| s.state = ClientState::Deleted,
            opts: ALLOW_DELETE,
            ..case(
                "declared deleted, project already gone: the site left behind",
                |fx| Obs::converged(fx).no_project(),
                &[("delete_site", DeclaredDeleted)],
            )
        },
        case(
            "auth drifted",
            |fx| {
                Obs::converged(fx).with(|o| {
                    o.auth.as_mut().expect("auth").redirect_urls = vec!["http://old/**".into()]
                })
            },
            &[("update_auth_config", Drifted)],
        ),
        case(
            "auth settings not read: set them",
            |fx| Obs::converged(fx).with(|o| o.auth = None),
            &[("update_auth_config", Missing)],
        ),
        case(
            "a bucket missing",
            |fx| Obs::converged(fx).db(|d| drop(d.buckets.pop())),
            &[("create_bucket", Missing)],
        ),
        case(
            "a bucket drifted",
            |fx| Obs::converged(fx).db(|d| d.buckets[0].public = !d.buckets[0].public),
            &[("update_bucket", Drifted)],
        ),
        case(
            "a migration pending",
            |fx| Obs::converged(fx).db(|d| drop(d.migrations.pop())),
            &[("apply_migrations", MigrationsPending)],
        ),
        Case {
            errors: &["20250101000000"],
            ..case(
                "an applied migration changed: refused, nothing planned",
                |fx| {
                    Obs::converged(fx)
                        .db(|d| d.migrations[0].statements_sha256 = Some("0".repeat(64)))
                },
                &[],
            )
        },
        case(
            "seed not applied",
            |fx| Obs::converged(fx).db(|d| d.seeds.clear()),
            &[("apply_seed", SeedNotApplied)],
        ),
        case(
            "seed changed since it ran: a note, never re-run",
            |fx| Obs::converged(fx).db(|d| d.seeds[0].hash = "0".repeat(64)),
            &[],
        ),
        case(
            "no Pages project: the record is pointed at the new project's subdomain",
            |fx| Obs::converged(fx).with(|o| o.site.pages = None),
            &[
                ("create_pages_project", Missing),
                ("deploy", NeverDeployed),
                ("add_domain", Missing),
                ("upsert_dns_record", Drifted),
            ],
        ),
        case(
            "production branch drifted",
            |fx| Obs::converged(fx).pages(|p| p.production_branch = "develop".into()),
            &[("update_pages_project", Drifted)],
        ),
        case(
            "never deployed",
            |fx| Obs::converged(fx).live(None),
            &[("deploy", NeverDeployed)],
        ),
        case(
            "deployed by someone else",
            |fx| Obs::converged(fx).live(Some("fix typo".into())),
            &[("deploy", NoFingerprint)],
        ),
        case(
            "frontend sources changed",
            |fx| {
                let old = fx.fingerprint(&"0".repeat(64), &fx.extras());
                Obs::converged(fx).live(Some(old.commit_message()))
            },
            &[("deploy", FrontendSourcesChanged)],
        ),
        case(
            "build values changed",
            |fx| {
                let old = fx.fingerprint(SOURCES, &BTreeMap::new());
                Obs::converged(fx).live(Some(old.commit_message()))
            },
            &[("deploy", BuildValuesChanged)],
        ),
        case(
            "sources and values changed",
            |fx| {
                let old = fx.fingerprint(&"0".repeat(64), &BTreeMap::new());
                Obs::converged(fx).live(Some(old.commit_message()))
            },
            &[("deploy", FrontendSourcesAndBuildValuesChanged)],
        ),
        case(
            "reverted frontend: the live deployment's predecessor is the desired build",
            |fx| {
                let want = fx.fingerprint(SOURCES, &fx.extras()).commit_hash();
                let newer = fx.fingerprint(&"0".repeat(64), &fx.extras());
                Obs::converged(fx).live(Some(newer.commit_message_after(&[(PREV_ID, &want)])))
            },
            &[("rollback_deployment", FrontendSourcesChanged)],
        ),
        case(
            "reverted values: a rollback too",
            |fx| {
                let want = fx.fingerprint(SOURCES, &fx.extras()).commit_hash();
                let newer = fx.fingerprint(SOURCES, &BTreeMap::new());
                Obs::converged(fx).live(Some(newer.commit_message_after(&[(PREV_ID, &want)])))
            },
            &[("rollback_deployment", BuildValuesChanged)],
        ),
        case(
            "reverted further back: the desired build is the chain's third entry",
            |fx| {
                let want = fx.fingerprint(SOURCES, &fx.extras()).commit_hash();
                let between = fx.fingerprint(&"1".repeat(64), &fx.extras()).commit_hash();
                let newer = fx.fingerprint(&"0".repeat(64), &fx.extras());
                Obs::converged(fx).live(Some(newer.commit_message_after(&[
                    (ONE_ID, &between),
                    (TWO_ID, &between),
                    (PREV_ID, &want),
                ])))
            },
            &[("rollback_deployment", FrontendSourcesChanged)],
        ),
        case(
            "a predecessor that is not the desired build: a deploy",
            |fx| {
                let older = fx.fingerprint(&"1".repeat(64), &fx.extras()).commit_hash();
                let newer = fx.fingerprint(&"0".repeat(64), &fx.extras());
                Obs::converged(fx).live(Some(newer.commit_message_after(&[(PREV_ID, &older)])))
            },
            &[("deploy", FrontendSourcesChanged)],
        ),
        case(
            "domain not attached",
            |fx| Obs::converged(fx).pages(|p| p.domains.clear()),
            &[("add_domain", Missing)],
        ),
        case(
            "no DNS record",
            |fx| Obs::converged(fx).dns(|d| *d = None),
            &[("upsert_dns_record", Missing)],
        ),
        case(
            "our DNS record points elsewhere",
            |fx| {
                Obs::converged(fx)
                    .dns(|d| d.as_mut().expect("dns").content = "elsewhere.example".into())
            },
            &[("upsert_dns_record", Drifted)],
        ),
        case(
            "someone else's DNS record already pointing at the site (made by hand): adopted",
            |fx| {
                Obs::converged(fx).dns(|d| {
                    let d = d.as_mut().expect("dns");
                    d.comment = None;
                    d.proxied = false;
                })
            },
            &[("adopt_dns_record", PointsAtSite)],
        ),
        Case {
            errors: &["points elsewhere than the site, and intelli does not own it"],
            ..case(
                "someone else's DNS record pointing elsewhere: refused, no site action",
                |fx| {
                    Obs::converged(fx).dns(|d| {
                        let d = d.as_mut().expect("dns");
                        d.comment = None;
                        d.content = "elsewhere.example".into();
                    })
                },
                &[],
            )
        },
        Case {
            spec: |s| s.take_over_dns = true,
            ..case(
                "someone else's DNS record pointing elsewhere, with take_over_dns",
                |fx| {
                    Obs::converged(fx).dns(|d| {
                        let d = d.as_mut().expect("dns");
                        d.comment = None;
                        d.content = "elsewhere.example".into();
                    })
                },
                &[("upsert_dns_record", TakeOver)],
            )
        },
        case(
            "seed not recorded but its rows present (migrations.seed_check): recorded, not run",
            |fx| {
                Obs::converged(fx).with(|o| {
                    let db = o.database.as_mut().expect("db");
                    db.seeds.clear();
                    db.seed_present = Some(true);
                })
            },
            &[("record_seed", SeedPresent)],
        ),
        case(
            "seed not recorded and seed_check says absent: run",
            |fx| {
                Obs::converged(fx).with(|o| {
                    let db = o.database.as_mut().expect("db");
                    db.seeds.clear();
                    db.seed_present = Some(false);
                })
            },
            &[("apply_seed", SeedNotApplied)],
        ),
        case(
            "domain pending",
            |fx| Obs::converged(fx).with(|o| o.site.domain_status = Some(DomainStatus::Pending)),
            &[("wait_for_domain", DomainNotActive)],
        ),
        Case {
            frontend: false,
            ..case(
                "--skip-frontend: the site is not planned",
                |fx| Obs::converged(fx).with(|o| o.site = Default::default()),
                &[],
            )
        },
        Case {
            errors: &["intelli will not guess"],
            ..case(
                "two projects with the client's name: refused",
                |fx| {
                    Obs::converged(fx)
                        .no_project()
                        .with(|o| o.duplicates = vec![REF.into(), "tsrqponmlkjihgfedcba".into()])
                },
                &[],
            )
        },
        Case {
            errors: &["failed to initialise"],
            ..case(
                "INIT_FAILED: refused",
                |fx| Obs::converged(fx).status(ProjectStatus::InitFailed),
                &[],
            )
        },
        Case {
            spec: |s| s.project_ref = Some("zzzzzzzzzzzzzzzzzzzz".into()),
            errors: &["is pinned"],
            ..case(
                "pinned project not visible: refused",
                |_| Obs::nothing(),
                &[],
            )
        },
        Case {
            spec: |s| s.project_ref = Some("zzzzzzzzzzzzzzzzzzzz".into()),
            errors: &["being deleted"],
            ..case(
                "pinned project going down: refused, nothing created",
                |_| Obs::nothing().with(|o| o.dying = vec![dying("zzzzzzzzzzzzzzzzzzzz")]),
                &[],
            )
        },
        case(
            "old project going down: a new one is created",
            |fx| {
                Obs::converged(fx)
                    .no_project()
                    .with(|o| o.dying = vec![dying("yyyyyyyyyyyyyyyyyyyy")])
            },
            REBUILT_WITH_PROJECT,
        ),
        case(
            "no publishable key: created, the site rebuilt with it",
            |fx| Obs::converged(fx).no_publishable(),
            &[("create_api_key", Missing), ("deploy", BuildValuesChanged)],
        ),
        case(
            "no secret key acting as service_role: created",
            |fx| Obs::converged(fx).keys(|k| k.service_secret = false),
            &[("create_api_key", Missing)],
        ),
        case(
            "no usable key at all: both created, the site rebuilt",
            |fx| {
                Obs::converged(fx)
                    .keys(|k| *k = ObservedKeys::default())
                    .with(|o| o.anon_key_sha256 = None)
            },
            &[
                ("create_api_key", Missing),
                ("create_api_key", Missing),
                ("deploy", BuildValuesChanged),
            ],
        ),
        case(
            "legacy keys on, legacy_keys: keep: nothing",
            |fx| Obs::converged(fx).legacy_on(),
            &[],
        ),
        Case {
            disable_legacy: true,
            ..case(
                "legacy_keys: disable, the site serves the publishable build: switched off",
                |fx| Obs::converged(fx).legacy_on(),
                &[("disable_legacy_keys", Drifted)],
            )
        },
        Case {
            disable_legacy: true,
            ..case(
                "legacy_keys: disable, the site serves another key's build: rebuilt, not yet",
                |fx| Obs::converged(fx).legacy_on().live_with_other_key(fx),
                &[("deploy", BuildValuesChanged)],
            )
        },
        Case {
            disable_legacy: true,
            ..case(
                "legacy_keys: disable, no publishable key: created, rebuilt, not yet",
                |fx| Obs::converged(fx).no_publishable(),
                &[("create_api_key", Missing), ("deploy", BuildValuesChanged)],
            )
        },
        Case {
            disable_legacy: true,
            ..case(
                "legacy_keys: disable, no secret key: created, not yet",
                |fx| {
                    Obs::converged(fx)
                        .legacy_on()
                        .keys(|k| k.service_secret = false)
                },
                &[("create_api_key", Missing)],
            )
        },
        Case {
            disable_legacy: true,
            ..case(
                "legacy_keys: disable, only the sources changed: rebuilt and switched off",
                |fx| {
                    let other = fx.fingerprint(&"6".repeat(64), &fx.extras());
                    Obs::converged(fx)
                        .legacy_on()
                        .live(Some(other.commit_message()))
                },
                &[
                    ("deploy", FrontendSourcesChanged),
                    ("disable_legacy_keys", Drifted),
                ],
            )
        },
        Case {
            disable_legacy: true,
            frontend: false,
            ..case(
                "legacy_keys: disable without the site planned: not yet",
                |fx| Obs::converged(fx).legacy_on(),
                &[],
            )
        },
        Case {
            disable_legacy: true,
            ..case(
                "legacy_keys: disable, already off: nothing",
                |fx| Obs::converged(fx).keys(|k| k.legacy_enabled = Some(false)),
                &[],
            )
        },
    ]
}

fn dying(project_ref: &str) -> DyingProject {
    DyingProject {
        project_ref: project_ref.into(),
        status: "GOING_DOWN".into(),
    }
}

fn run(fx: &Fixture, c: &Case) -> ClientPlan {
    let mut spec = fx.spec();
    (c.spec)(&mut spec);
    let mut fleet = fx.fleet.clone();
    if c.disable_legacy {
        fleet.settings.supabase.legacy_keys = LegacyKeys::Disable;
    }
    let desired = Desired {
        fleet: &fleet,
        ..fx.desired(c.frontend)
    };
    plan_client(&desired, &spec, &(c.obs)(fx).0, c.opts)
}

#[test]
fn each_observed_state_gives_its_actions_and_reasons() {
    let fx = Fixture::new();
    let mut failures = Vec::new();
    for c in cases() {
        let p = run(&fx, &c);
        let got: Vec<(&str, Reason)> = p
            .actions
            .iter()
            .map(|a| (coverage::name(a), a.reason()))
            .collect();
        let errors_ok = p.errors.len() == c.errors.len()
            && c.errors
                .iter()
                .zip(&p.errors)
                .all(|(want, got)| got.contains(want));
        if got != c.want || !errors_ok {
            failures.push(format!(
                "{}:\n  want {:?} errors {:?}\n  got  {got:?} errors {:?}",
                c.name, c.want, c.errors, p.errors
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_kind_and_reason_is_planned() {
    let fx = Fixture::new();
    let plans: Vec<ClientPlan> = cases().iter().map(|c| run(&fx, c)).collect();
    let (kinds, reasons) = coverage::missing(plans.iter().flat_map(|p| &p.actions));
    assert!(
        kinds.is_empty() && reasons.is_empty(),
        "no row plans {kinds:?} or gives {reasons:?}"
    );
}

#[test]
fn actions_carry_what_apply_needs() {
    let fx = Fixture::new();
    let spec = fx.spec();
    let by_name = |name: &str| cases().into_iter().find(|c| c.name == name).expect(name);

    // A deploy of a healthy project carries the fingerprint apply must build to.
    let p = run(&fx, &by_name("never deployed"));
    let want = fx.fingerprint(SOURCES, &fx.extras()).commit_hash();
    assert_eq!(
        p.actions,
        [Action::Deploy {
            project: spec.pages_project.clone(),
            fingerprint: Some(want),
            previous: None,
            reason: Reason::NeverDeployed,
        }]
    );
    // A new project's deploy cannot know it yet.
    let p = run(
        &fx,
        &by_name("project gone, site live: rebuilt once the project exists"),
    );
    assert!(matches!(
        p.actions.last(),
        Some(Action::Deploy {
            fingerprint: None,
            previous: None,
            ..
        })
    ));

    // A revert names the deployment to roll back to and its fingerprint, the desired one.
    let p = run(
        &fx,
        &by_name("reverted frontend: the live deployment's predecessor is the desired build"),
    );
    assert_eq!(
        p.actions,
        [Action::RollbackDeployment {
            project: spec.pages_project.clone(),
            deployment_id: PREV_ID.into(),
            fingerprint: fx.fingerprint(SOURCES, &fx.extras()).commit_hash(),
            reason: Reason::FrontendSourcesChanged,
        }]
    );
    // … also further back: the first chain entry with the desired fingerprint is the target,
    // the second …
    let want = fx.fingerprint(SOURCES, &fx.extras()).commit_hash();
    let (one, two) = (ONE_ID, TWO_ID);
    let other = |n: &str| fx.fingerprint(&n.repeat(64), &fx.extras()).commit_hash();
    let (o1, o2) = (other("1"), other("2"));
    let newer = fx.fingerprint(&"0".repeat(64), &fx.extras());
    let plan_over = |chain: &[(&str, &str)]| {
        plan_client(
            &fx.desired(true),
            &spec,
            &Obs::converged(&fx)
                .live(Some(newer.commit_message_after(chain)))
                .pages(|p| {
                    p.live_deployment_id = Some(LIVE_ID.into());
                    p.live_commit_hash = Some(newer.commit_hash());
                })
                .0,
            PlanOptions::default(),
        )
        .actions
    };
    let rollback_to = |id: &str| {
        vec![Action::RollbackDeployment {
            project: spec.pages_project.clone(),
            deployment_id: id.into(),
            fingerprint: want.clone(),
            reason: Reason::FrontendSourcesChanged,
        }]
    };
    assert_eq!(
        plan_over(&[(one, &o1), (two, &want), (PREV_ID, &o2)]),
        rollback_to(two)
    );
    // … the third, and the newest of two with the same fingerprint.
    assert_eq!(
        plan_over(&[(one, &o1), (two, &o2), (PREV_ID, &want)]),
        rollback_to(PREV_ID)
    );
    assert_eq!(
        plan_over(&[(one, &o1), (two, &want), (PREV_ID, &want)]),
        rollback_to(two)
    );
    // Equal to none of them: a deploy, which records the live deployment and the first two of
    // its chain (the third falls off).
    assert_eq!(
        plan_over(&[(one, &o1), (two, &o2), (PREV_ID, &o1)]),
        vec![Action::Deploy {
            project: spec.pages_project.clone(),
            fingerprint: Some(want.clone()),
            previous: Some(PreviousDeployment {
                deployment_id: LIVE_ID.into(),
                fingerprint: newer.commit_hash(),
                earlier: vec![
                    DeploymentRef {
                        deployment_id: one.into(),
                        fingerprint: o1.clone(),
                    },
                    DeploymentRef {
                        deployment_id: two.into(),
                        fingerprint: o2.clone(),
                    },
                ],
            }),
            reason: Reason::FrontendSourcesChanged,
        }]
    );

    // A deploy over a live deployment intelli made records that one as its predecessor …
    let live_id = "9f8e7d6c-0000-4000-8000-000000000001";
    let live_fp = fx.fingerprint(&"0".repeat(64), &fx.extras());
    let mut c = by_name("frontend sources changed");
    c.obs = |fx| {
        let live_fp = fx.fingerprint(&"0".repeat(64), &fx.extras());
        Obs::converged(fx)
            .live(Some(live_fp.commit_message()))
            .pages(|p| {
                p.live_deployment_id = Some("9f8e7d6c-0000-4000-8000-000000000001".into());
                p.live_commit_hash = Some(live_fp.commit_hash());
            })
    };
    assert!(matches!(
        &run(&fx, &c).actions[..],
        [Action::Deploy { previous: Some(prev), .. }]
            if prev.deployment_id == live_id && prev.fingerprint == live_fp.commit_hash()
    ));
    // … but not one someone else made (its commit hash is no fingerprint of ours).
    let mut c = by_name("deployed by someone else");
    c.obs = |fx| {
        Obs::converged(fx).live(Some("fix typo".into())).pages(|p| {
            p.live_deployment_id = Some("9f8e7d6c-0000-4000-8000-000000000001".into());
            p.live_commit_hash = Some("a".repeat(40));
        })
    };
    assert!(matches!(
        &run(&fx, &c).actions[..],
        [Action::Deploy { previous: None, .. }]
    ));

    // A DNS fix says what the record is now, and points at the Pages subdomain.
    let p = run(&fx, &by_name("our DNS record points elsewhere"));
    assert_eq!(
        p.actions,
        [Action::UpsertDnsRecord {
            name: spec.domain.clone(),
            target: Some(format!("{}.pages.dev", spec.pages_project)),
            before: Some(DnsRecordValue {
                record_type: "CNAME".into(),
                content: "elsewhere.example".into(),
                proxied: true,
            }),
            reason: Reason::Drifted,
        }]
    );

    // Only the pending migration, and the seed note when the seed changed.
    let p = run(&fx, &by_name("a migration pending"));
    assert!(matches!(
        &p.actions[..],
        [Action::ApplyMigrations { versions, .. }] if versions == &["20250102000000"]
    ));
    let p = run(
        &fx,
        &by_name("seed changed since it ran: a note, never re-run"),
    );
    assert!(
        p.notes.iter().any(|n| n.contains("is not re-run")),
        "{:?}",
        p.notes
    );

    // Deleting the site names the DNS record only because intelli owns it.
    let p = run(
        &fx,
        &by_name("declared deleted with --allow-delete: project and site"),
    );
    assert!(matches!(
        &p.actions[..],
        [Action::DeleteProject { project_ref, .. }, Action::DeleteSite { dns_record: Some(d), .. }]
            if project_ref == REF && d == &spec.domain
    ));
}

#[test]
fn the_planner_is_deterministic() {
    let fx = Fixture::new();
    for c in cases() {
        assert_eq!(run(&fx, &c), run(&fx, &c), "{}", c.name);
    }
}
