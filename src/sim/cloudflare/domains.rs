//! Pages custom domains (`/accounts/{a}/pages/projects/{p}/domains[/{name}]`).
//!
//! Status follows the documented flow: adding the domain creates no DNS record; the domain
//! stays `pending` until a proxied CNAME `<domain> → <project subdomain>` exists in the zone,
//! and becomes `active` once the configured delay has passed since both the validation started
//! and the CNAME appeared (or last changed where it points; a comment edit does not count). PATCH restarts validation of a non-active domain.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::envelope::{ApiError, codes, ok, ok_list, parse_json};
use super::pages::{find_project, project_key};
use super::state::{Domain, State as SimState};
use super::{CloudflareSim, later, ts};

type Sim = State<Arc<CloudflareSim>>;

fn zone_for<'a>(state: &'a SimState, name: &str) -> Option<&'a super::state::Zone> {
    state
        .zones
        .values()
        .filter(|z| name == z.name || name.ends_with(&format!(".{}", z.name)))
        .max_by_key(|z| z.name.len())
}

/// `initializing`, `pending` or `active` at `now`.
pub fn domain_status(
    state: &SimState,
    d: &Domain,
    now: DateTime<Utc>,
    delay: Duration,
) -> &'static str {
    if now < later(d.validation_started, delay / 2) {
        return "initializing";
    }
    let Some(project) = state
        .projects
        .get(&project_key(&d.account_id, &d.project_name))
    else {
        return "pending";
    };
    let cname = zone_for(state, &d.name).and_then(|zone| {
        state.dns_records.values().find(|r| {
            r.zone_id == zone.id
                && r.record_type == "CNAME"
                && r.proxied
                && r.name == d.name
                && r.content
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(&project.subdomain)
        })
    });
    match cname {
        Some(r)
            if now
                >= later(
                    d.validation_started
                        .max(r.routed_on.unwrap_or(r.modified_on)),
                    delay,
                ) =>
        {
            "active"
        }
        _ => "pending",
    }
}

pub fn domain_json(state: &SimState, d: &Domain, now: DateTime<Utc>, delay: Duration) -> Value {
    let status = domain_status(state, d, now, delay);
    let verification = if status == "active" {
        "active"
    } else {
        "pending"
    };
    json!({
        "id": d.id,
        "domain_id": d.id,
        "name": d.name,
        "status": status,
        "verification_data": {"status": verification},
        "validation_data": {"status": status, "method": "http"},
        "zone_tag": zone_for(state, &d.name).map(|z| z.id.clone()),
        "certificate_authority": "google",
        "created_on": ts(d.created_on),
    })
}

fn domain_key(account_id: &str, project: &str, name: &str) -> String {
    format!("{}/{}", project_key(account_id, project), name)
}

/// The key of a domain the project has (names compare case-insensitively), or the API's
/// "project not found" / "domain not found".
fn existing_domain(
    state: &SimState,
    account_id: &str,
    project: &str,
    name: &str,
) -> Result<String, ApiError> {
    find_project(state, account_id, project)?;
    let key = domain_key(account_id, project, &name.to_ascii_lowercase());
    if state.domains.contains_key(&key) {
        Ok(key)
    } else {
        Err(domain_not_found())
    }
}

fn domain_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::PAGES_DOMAIN_NOT_FOUND,
        "Domain not found.",
    )
}

fn valid_domain(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub async fn list_domains(
    State(sim): Sim,
    Path((account_id, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let now = Utc::now();
    let state = sim.lock();
    find_project(&state, &account_id, &project)?;
    let prefix = format!("{}/", project_key(&account_id, &project));
    let items: Vec<Value> = state
        .domains
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, d)| domain_json(&state, d, now, sim.config.domain_activation_delay))
        .collect();
    let n = items.len();
    // One page holds them all (the API documents no pagination here).
    let info =
        json!({"page": 1, "per_page": n.max(1), "count": n, "total_count": n, "total_pages": 1});
    Ok(ok_list(items, info))
}

#[derive(Deserialize)]
struct AddDomain {
    name: Option<String>,
}

pub async fn add_domain(
    State(sim): Sim,
    Path((account_id, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let body: AddDomain = parse_json(&body, codes::PAGES_BAD_REQUEST)?;
    let name = body
        .name
        .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| valid_domain(n))
        .ok_or_else(|| ApiError::pages_bad_request("A valid domain name is required."))?;
    let now = Utc::now();
    let delay = sim.config.domain_activation_delay;
    let max_domains = sim.config.max_domains_per_project;
    let result = sim.mutate(|state| {
        find_project(state, &account_id, &project)?;
        let prefix = format!("{}/", project_key(&account_id, &project));
        let on_project = state
            .domains
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .count();
        if on_project >= max_domains {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::PAGES_DOMAIN_LIMIT,
                format!("A project can have at most {max_domains} custom domains."),
            ));
        }
        if state.domains.values().any(|d| d.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::PAGES_DOMAIN_EXISTS,
                "You have already added this custom domain.",
            ));
        }
        let d = Domain {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account_id.clone(),
            project_name: project.clone(),
            name: name.clone(),
            created_on: now,
            validation_started: now,
        };
        let json = domain_json(state, &d, now, delay);
        state
            .domains
            .insert(domain_key(&account_id, &project, &name), d);
        Ok(json)
    })?;
    sim.stats.bump(|s| s.domains_added += 1);
    Ok(ok(result))
}

pub async fn get_domain(
    State(sim): Sim,
    Path((account_id, project, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let state = sim.lock();
    let key = existing_domain(&state, &account_id, &project, &name)?;
    let d = &state.domains[&key];
    Ok(ok(domain_json(
        &state,
        d,
        Utc::now(),
        sim.config.domain_activation_delay,
    )))
}

pub async fn patch_domain(
    State(sim): Sim,
    Path((account_id, project, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let now = Utc::now();
    let delay = sim.config.domain_activation_delay;
    let result = sim.mutate(|state| {
        let key = existing_domain(state, &account_id, &project, &name)?;
        let d = state.domains[&key].clone();
        let mut d2 = d.clone();
        // "Retry the validation status": an active domain stays as it is.
        if domain_status(state, &d, now, delay) != "active" {
            d2.validation_started = now;
        }
        let json = domain_json(state, &d2, now, delay);
        state.domains.insert(key, d2);
        Ok(json)
    })?;
    Ok(ok(result))
}

pub async fn delete_domain(
    State(sim): Sim,
    Path((account_id, project, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    sim.mutate(|state| {
        let key = existing_domain(state, &account_id, &project, &name)?;
        state.domains.remove(&key);
        Ok(())
    })?;
    Ok(ok(Value::Null))
}
