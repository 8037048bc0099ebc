//! A project's API keys in the plan: creating the publishable or secret key a project lacks,
//! and switching the legacy JWT keys off when the fleet says `supabase.legacy_keys: disable`.
//! Pure, like the rest of `plan`.

use super::diff::{Desired, desired_fingerprint};
use super::model::{Action, ClientPlan, Reason};
use crate::fleet::{ClientSpec, LegacyKeys};
use crate::frontend::{Fingerprint, Staleness};
use crate::observe::{ObservedClient, ObservedKeys};
use crate::supabase::{BrowserKeyKind, NewKeyKind};

/// A healthy project without a publishable key, or without a secret key acting as
/// `service_role`, gets one. Nothing when the keys were not read.
pub(super) fn plan_keys(obs: &ObservedClient, p: &mut ClientPlan) {
    let Some(keys) = &obs.keys else {
        return;
    };
    for (have, kind) in [
        (keys.publishable, NewKeyKind::Publishable),
        (keys.service_secret, NewKeyKind::Secret),
    ] {
        if !have {
            p.actions.push(Action::CreateApiKey {
                key_type: kind,
                name: kind.intelli_name().to_string(),
                reason: Reason::Missing,
            });
        }
    }
}

/// Whether this plan creates a publishable key (the site's browser key changes with it).
pub(super) fn publishable_pending(p: &ClientPlan) -> bool {
    p.actions.iter().any(|a| {
        matches!(
            a,
            Action::CreateApiKey {
                key_type: NewKeyKind::Publishable,
                ..
            }
        )
    })
}

/// With `legacy_keys: disable`, the legacy keys are switched off once it cannot break anything
/// intelli runs: the project has a publishable key and the site serves a build made with it
/// (its live fingerprint's values are the ones planned with that key), and a secret key for
/// Storage exists. Until then, a note says what is waited for.
pub(super) fn plan_legacy_keys(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    obs: &ObservedClient,
    p: &mut ClientPlan,
) {
    if desired.fleet.settings.supabase.legacy_keys != LegacyKeys::Disable {
        return;
    }
    let Some(keys) = &obs.keys else {
        return;
    };
    if keys.legacy_enabled != Some(true) {
        return;
    }
    match not_yet(desired, spec, obs, keys, p) {
        None => p.actions.push(Action::DisableLegacyKeys {
            reason: Reason::Drifted,
        }),
        Some(why) => p.notes.push(format!(
            "legacy API keys stay on (legacy_keys: disable) until {why}"
        )),
    }
}

/// What the switch-off still waits for, if anything.
fn not_yet(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    obs: &ObservedClient,
    keys: &ObservedKeys,
    p: &ClientPlan,
) -> Option<&'static str> {
    if keys.browser != Some(BrowserKeyKind::Publishable) || publishable_pending(p) {
        return Some("the project has a publishable key and the site serves a build made with it");
    }
    if !keys.service_secret {
        return Some("the project has a secret key for Storage");
    }
    let Some(front) = &desired.frontend else {
        return Some("the site is planned too (it is not with --skip-frontend)");
    };
    let live = obs
        .site
        .pages
        .as_ref()
        .and_then(|pg| pg.live_commit_message.as_deref())
        .and_then(Fingerprint::parse);
    let want = desired_fingerprint(front, spec, obs).ok().flatten();
    let serves_it = want.is_some_and(|want| {
        matches!(
            want.stale_reason(live.as_ref()),
            None | Some(Staleness::Sources)
        )
    });
    (!serves_it).then_some("the site serves a build made with the publishable key")
}
