//! For the planner's tests: every action kind and every reason, by name, so that a test can
//! say which of them it has covered. The matches are exhaustive: a new variant does not compile
//! until it is listed here, and then the coverage tests fail until a test plans and renders it.

use std::collections::BTreeSet;

use super::model::{Action, Reason};

/// Every `Action` variant, by the name its JSON `type` carries.
pub const ACTIONS: [&str; 22] = [
    "create_project",
    "wait_until_healthy",
    "restore_project",
    "pause_project",
    "delete_project",
    "update_auth_config",
    "create_bucket",
    "update_bucket",
    "apply_migrations",
    "apply_seed",
    "record_seed",
    "create_pages_project",
    "update_pages_project",
    "deploy",
    "rollback_deployment",
    "add_domain",
    "upsert_dns_record",
    "adopt_dns_record",
    "delete_site",
    "wait_for_domain",
    "create_api_key",
    "disable_legacy_keys",
];

/// Every `Reason`.
pub const REASONS: [Reason; 18] = [
    Reason::Missing,
    Reason::Drifted,
    Reason::TakeOver,
    Reason::DeclaredActive,
    Reason::DeclaredPaused,
    Reason::DeclaredDeleted,
    Reason::ProjectNotReady,
    Reason::MigrationsPending,
    Reason::SeedNotApplied,
    Reason::NeverDeployed,
    Reason::NoFingerprint,
    Reason::FrontendSourcesChanged,
    Reason::BuildValuesChanged,
    Reason::FrontendSourcesAndBuildValuesChanged,
    Reason::ProjectBeingCreated,
    Reason::DomainNotActive,
    Reason::SeedPresent,
    Reason::PointsAtSite,
];

/// The name of `a`'s variant (as in [`ACTIONS`]).
pub fn name(a: &Action) -> &'static str {
    match a {
        Action::CreateProject { .. } => "create_project",
        Action::WaitUntilHealthy { .. } => "wait_until_healthy",
        Action::RestoreProject { .. } => "restore_project",
        Action::PauseProject { .. } => "pause_project",
        Action::DeleteProject { .. } => "delete_project",
        Action::UpdateAuthConfig { .. } => "update_auth_config",
        Action::CreateBucket { .. } => "create_bucket",
        Action::UpdateBucket { .. } => "update_bucket",
        Action::ApplyMigrations { .. } => "apply_migrations",
        Action::ApplySeed { .. } => "apply_seed",
        Action::RecordSeed { .. } => "record_seed",
        Action::CreatePagesProject { .. } => "create_pages_project",
        Action::UpdatePagesProject { .. } => "update_pages_project",
        Action::Deploy { .. } => "deploy",
        Action::RollbackDeployment { .. } => "rollback_deployment",
        Action::AddDomain { .. } => "add_domain",
        Action::UpsertDnsRecord { .. } => "upsert_dns_record",
        Action::AdoptDnsRecord { .. } => "adopt_dns_record",
        Action::DeleteSite { .. } => "delete_site",
        Action::WaitForDomain { .. } => "wait_for_domain",
        Action::CreateApiKey { .. } => "create_api_key",
        Action::DisableLegacyKeys { .. } => "disable_legacy_keys",
    }
}

/// A compile-time guard: a new `Reason` fails here until it is added to [`REASONS`].
fn _every_reason_is_listed(r: Reason) {
    match r {
        Reason::Missing
        | Reason::Drifted
        | Reason::TakeOver
        | Reason::DeclaredActive
        | Reason::DeclaredPaused
        | Reason::DeclaredDeleted
        | Reason::ProjectNotReady
        | Reason::MigrationsPending
        | Reason::SeedNotApplied
        | Reason::NeverDeployed
        | Reason::NoFingerprint
        | Reason::FrontendSourcesChanged
        | Reason::BuildValuesChanged
        | Reason::FrontendSourcesAndBuildValuesChanged
        | Reason::ProjectBeingCreated
        | Reason::DomainNotActive
        | Reason::SeedPresent
        | Reason::PointsAtSite => {}
    }
}

/// The action kinds and reasons that `actions` lack.
pub fn missing<'a>(
    actions: impl IntoIterator<Item = &'a Action>,
) -> (Vec<&'static str>, Vec<Reason>) {
    let mut kinds: BTreeSet<&str> = ACTIONS.into_iter().collect();
    let mut reasons: Vec<Reason> = REASONS.to_vec();
    for a in actions {
        kinds.remove(name(a));
        reasons.retain(|r| *r != a.reason());
    }
    (kinds.into_iter().collect(), reasons)
}

#[test]
fn the_lists_match_the_json_names() {
    // Each name is the serde tag of its variant; a typo would make coverage vacuous.
    for kind in ACTIONS {
        assert!(
            crate::schema::render("plan")
                .expect("plan schema")
                .contains(&format!("\"{kind}\"")),
            "{kind} is not a plan action type"
        );
    }
    let unique: BTreeSet<_> = REASONS.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(unique.len(), REASONS.len(), "a reason is listed twice");
}
