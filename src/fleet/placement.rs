//! Which Cloudflare account holds each client's Pages project.
//!
//! Cloudflare Pages allows 100 projects per account by default (raised on request), counting
//! every project in the account, intelli's or not. A fleet spreads over `cloudflare.accounts`;
//! this module decides, purely, where each client's site is or will be:
//!
//! 1. A site that exists stays where it is: intelli never moves a site (its deployments and
//!    domain live in that account). A pin (`cloudflare.account_id` in the client file) that
//!    disagrees with where the site is, or a project name found in two accounts, is an error.
//! 2. A new pinned client goes to its pinned account.
//! 3. A new unpinned client goes to the first account, in the fleet's order, with room, taking
//!    clients in slug order. Room is `max_projects` minus the projects the account holds now
//!    minus the new clients already placed there.
//!
//! The whole fleet is placed every time, whatever `--only` selects, so runs over parts of the
//! fleet cannot overfill an account between them; and the same fleet and accounts give the same
//! placement on every run. `validate` runs it with no observed projects (the fleet alone must
//! fit); `plan` runs it with every account's project list.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::Diagnostics;
use crate::fleet::{ClientState, FLEET_FILE, Fleet};

/// Cloudflare's default number of Pages projects per account.
pub const DEFAULT_MAX_PROJECTS: u32 = 100;

/// One account intelli may put Pages projects in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub max_projects: u32,
    /// Where it is declared in fleet.yaml (`cloudflare.account_id`, `cloudflare.accounts[1]`).
    pub field: String,
}

/// The Pages project names each account holds now (observed), by account id.
pub type Inventory = BTreeMap<String, BTreeSet<String>>;

/// Client slug → the account its site is in or will be created in. Clients with no site to
/// keep (declared deleted, with nothing left) have no entry.
pub type Placement = BTreeMap<String, String>;

/// Place every client of `fleet` on `accounts` given what they hold (see the module docs).
pub fn place(
    fleet: &Fleet,
    accounts: &[Account],
    inventory: &Inventory,
) -> Result<Placement, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut used: BTreeMap<&str, usize> = accounts
        .iter()
        .map(|a| (a.id.as_str(), inventory.get(&a.id).map_or(0, BTreeSet::len)))
        .collect();
    let mut placement = Placement::new();
    let mut unplaced: Vec<&str> = Vec::new();
    let mut pinned_new: Vec<(&str, &Account)> = Vec::new();

    for spec in fleet.clients.values() {
        let holding: Vec<&Account> = accounts
            .iter()
            .filter(|a| {
                inventory
                    .get(&a.id)
                    .is_some_and(|p| p.contains(&spec.pages_project))
            })
            .collect();
        let pin = spec
            .cloudflare_account
            .as_deref()
            .and_then(|p| resolve_pin(accounts, p));
        match (holding.as_slice(), pin) {
            ([one], Some(pinned)) if one.id != pinned.id => diags.push(fleet.diag_at(
                &spec.file,
                "cloudflare.account_id",
                format!(
                    "Pages project {} is in account {}, not in the pinned account {}: intelli never moves a site",
                    spec.pages_project, one.id, pinned.id
                ),
            )),
            ([one], _) => {
                placement.insert(spec.slug.clone(), one.id.clone());
            }
            ([], _) if spec.state == ClientState::Deleted => {}
            ([], Some(pinned)) => pinned_new.push((&spec.slug, pinned)),
            ([], None) => unplaced.push(&spec.slug),
            (several, Some(pinned)) if several.iter().any(|a| a.id == pinned.id) => {
                placement.insert(spec.slug.clone(), pinned.id.clone());
            }
            (several, _) => diags.push(fleet.diag_at(
                &spec.file,
                "client",
                format!(
                    "Pages project {} exists in accounts {}: pin the client's one with cloudflare.account_id",
                    spec.pages_project,
                    several.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(" and ")
                ),
            )),
        }
    }

    // Pins first: a pinned client has no other place to go.
    for (slug, account) in pinned_new {
        let n = used.entry(account.id.as_str()).or_default();
        *n += 1;
        if *n > account.max_projects as usize {
            if let Some(spec) = fleet.clients.get(slug) {
                diags.push(fleet.diag_at(
                    &spec.file,
                    "cloudflare.account_id",
                    format!(
                        "account {} is full: it may hold {} Pages projects (max_projects) and this client would be project {}",
                        account.id, account.max_projects, n
                    ),
                ));
            }
        } else {
            placement.insert(slug.to_string(), account.id.clone());
        }
    }

    let mut not_fitting: Vec<&str> = Vec::new();
    for slug in unplaced {
        let room = accounts
            .iter()
            .find(|a| used.get(a.id.as_str()).copied().unwrap_or(0) < a.max_projects as usize);
        match room {
            Some(a) => {
                *used.entry(a.id.as_str()).or_default() += 1;
                placement.insert(slug.to_string(), a.id.clone());
            }
            None => not_fitting.push(slug),
        }
    }
    if !not_fitting.is_empty() {
        diags.push(does_not_fit(fleet, accounts, inventory, &not_fitting));
    }
    if diags.is_empty() {
        Ok(placement)
    } else {
        diags.sort();
        Err(diags)
    }
}

/// The account a pin names. With a single account the pin may name it by the id written in
/// fleet.yaml even when `CLOUDFLARE_ACCOUNT_ID` replaced that id for this run.
fn resolve_pin<'a>(accounts: &'a [Account], pin: &str) -> Option<&'a Account> {
    accounts.iter().find(|a| a.id == pin).or(match accounts {
        [only] => Some(only),
        _ => None,
    })
}

fn does_not_fit(
    fleet: &Fleet,
    accounts: &[Account],
    inventory: &Inventory,
    not_fitting: &[&str],
) -> crate::diag::Diagnostic {
    let capacity: u64 = accounts.iter().map(|a| u64::from(a.max_projects)).sum();
    let held: usize = accounts
        .iter()
        .map(|a| inventory.get(&a.id).map_or(0, BTreeSet::len))
        .sum();
    let field = match accounts {
        [only] => only.field.clone(),
        _ => "cloudflare.accounts".to_string(),
    };
    let taken = if held > 0 {
        format!(", {held} of them taken by projects that exist now")
    } else {
        String::new()
    };
    let shown: Vec<&str> = not_fitting.iter().take(5).copied().collect();
    let more = if not_fitting.len() > shown.len() {
        format!(" and {} more", not_fitting.len() - shown.len())
    } else {
        String::new()
    };
    fleet.diag_at(
        &fleet.dir.join(FLEET_FILE),
        &field,
        format!(
            "the fleet does not fit its Cloudflare accounts: {} client(s) have no account with room \
             for a new Pages project ({}{more}); the {} account(s) may hold {capacity} projects \
             (max_projects, default {DEFAULT_MAX_PROJECTS}){taken}. Add an account to \
             cloudflare.accounts, or raise max_projects after Cloudflare raised the account's limit",
            not_fitting.len(),
            shown.join(", "),
            accounts.len(),
        ),
    )
}
