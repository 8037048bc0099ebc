//! Pages projects and deployments (`/accounts/{a}/pages/projects[...]`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::envelope::{ApiError, Page, codes, ok, ok_list, parse_json, query_map};
use super::state::{Deployment, Project, State as SimState};
use super::{CloudflareSim, ts};

type Sim = State<Arc<CloudflareSim>>;

pub fn project_key(account_id: &str, name: &str) -> String {
    format!("{account_id}/{name}")
}

/// Project names: `^[a-z0-9][a-z0-9-]*$` (OpenAPI `pages_project_name`), at most 58 characters
/// and no trailing `-` (create-cloudflare's validator; 58 + a random suffix fits a DNS label).
fn valid_project_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 58
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

/// Branch alias label: lower-case, non-alphanumerics → `-`, at most 28 characters.
pub(crate) fn branch_alias(branch: &str) -> String {
    let mut alias: String = branch
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    alias.truncate(28);
    alias.trim_matches('-').to_owned()
}

pub fn deployment_json(
    state: &SimState,
    project: &Project,
    d: &Deployment,
    now: DateTime<Utc>,
) -> Value {
    let live = d.live_from <= now;
    let created = ts(d.created_on);
    let done = |name: &str| json!({"name": name, "status": "success", "started_on": created, "ended_on": created});
    let deploy = if live {
        json!({"name": "deploy", "status": "success", "started_on": created, "ended_on": ts(d.live_from)})
    } else {
        json!({"name": "deploy", "status": "active", "started_on": created, "ended_on": null})
    };
    let stages = vec![
        done("queued"),
        done("initialize"),
        done("clone_repo"),
        done("build"),
        deploy.clone(),
    ];
    let mut aliases = Vec::new();
    let alias = branch_alias(&d.branch);
    if !alias.is_empty() {
        aliases.push(format!("https://{alias}.{}", project.subdomain));
    }
    if project.canonical_deployment_id(now) == Some(d.id.as_str()) {
        aliases.push(format!("https://{}", project.subdomain));
        for domain in project_domains(state, project) {
            aliases.push(format!("https://{domain}"));
        }
    }
    json!({
        "id": d.id,
        "short_id": d.short_id,
        "project_id": d.project_id,
        "project_name": d.project_name,
        "environment": d.environment,
        "url": format!("https://{}.{}", d.short_id, project.subdomain),
        "created_on": created,
        "modified_on": ts(if live { d.live_from } else { d.created_on }),
        "aliases": aliases,
        "latest_stage": deploy,
        "stages": stages,
        "deployment_trigger": {
            "type": "ad_hoc",
            "metadata": {
                "branch": d.branch,
                "commit_hash": d.commit_hash.clone().unwrap_or_default(),
                "commit_message": d.commit_message.clone().unwrap_or_default(),
                "commit_dirty": d.commit_dirty.unwrap_or(false),
            }
        },
        "env_vars": {},
        "build_config": project.build_config,
        "is_skipped": false,
        "production_branch": project.production_branch,
        "uses_functions": d.uses_functions,
    })
}

fn project_domains(state: &SimState, project: &Project) -> Vec<String> {
    let prefix = format!("{}/", project_key(&project.account_id, &project.name));
    state
        .domains
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, d)| d.name.clone())
        .collect()
}

pub fn project_json(state: &SimState, p: &Project, now: DateTime<Utc>) -> Value {
    let deployment = |id: Option<&str>| {
        id.and_then(|id| state.deployments.get(id))
            .map(|d| deployment_json(state, p, d, now))
            .unwrap_or(Value::Null)
    };
    let canonical = deployment(p.canonical_deployment_id(now));
    let uses_functions = canonical
        .get("uses_functions")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    json!({
        "id": p.id,
        "name": p.name,
        "subdomain": p.subdomain,
        "domains": project_domains(state, p),
        "production_branch": p.production_branch,
        "created_on": ts(p.created_on),
        "deployment_configs": p.deployment_configs,
        "build_config": p.build_config,
        "latest_deployment": deployment(p.latest_deployment_id.as_deref()),
        "canonical_deployment": canonical,
        "framework": "",
        "framework_version": "",
        "production_script_name": format!("pages-worker--{}-production", &p.id[..8.min(p.id.len())]),
        "preview_script_name": format!("pages-worker--{}-preview", &p.id[..8.min(p.id.len())]),
        "uses_functions": uses_functions,
    })
}

fn default_deployment_configs() -> Value {
    let env = json!({
        "compatibility_date": "",
        "compatibility_flags": [],
        "env_vars": {},
        "fail_open": true,
        "always_use_latest_compatibility_date": false,
        "build_image_major_version": 3,
        "usage_model": "standard",
    });
    json!({"production": env, "preview": env})
}

/// Merge patch as the Pages API applies it: objects merge key by key, `null` deletes
/// ("to delete an environment variable, set the key to null").
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

pub(crate) fn find_project<'a>(
    state: &'a SimState,
    account_id: &str,
    name: &str,
) -> Result<&'a Project, ApiError> {
    state
        .projects
        .get(&project_key(account_id, name))
        .ok_or_else(ApiError::project_not_found)
}

pub async fn list_projects(
    State(sim): Sim,
    Path(account_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let query = query_map(query.as_deref());
    let page = Page::from_query(&query, 10, 1, 100);
    let now = Utc::now();
    let state = sim.lock();
    let prefix = format!("{account_id}/");
    // Newest first, like the dashboard and API.
    let mut projects: Vec<&Project> = state
        .projects
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, p)| p)
        .collect();
    projects.sort_by(|a, b| b.created_on.cmp(&a.created_on).then(a.name.cmp(&b.name)));
    let (items, info) = page.slice(&projects);
    let result = items
        .into_iter()
        .map(|p| project_json(&state, p, now))
        .collect();
    Ok(ok_list(result, info))
}

#[derive(Deserialize)]
struct CreateProject {
    name: Option<String>,
    production_branch: Option<String>,
    deployment_configs: Option<Value>,
    build_config: Option<Value>,
}

pub async fn create_project(
    State(sim): Sim,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let body: CreateProject = parse_json(&body, codes::PAGES_BAD_REQUEST)?;
    let name = body
        .name
        .ok_or_else(|| ApiError::pages_bad_request("A project name is required."))?;
    if !valid_project_name(&name) {
        return Err(ApiError::pages_bad_request(
            "Project names must be 1-58 lowercase letters, numbers and dashes, and must not start or end with a dash.",
        ));
    }
    let production_branch = body
        .production_branch
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| ApiError::pages_bad_request("A production branch is required."))?;
    let mut deployment_configs = default_deployment_configs();
    if let Some(patch) = &body.deployment_configs {
        merge(&mut deployment_configs, patch);
    }
    let mut build_config = json!({
        "build_caching": false, "build_command": "", "destination_dir": "",
        "root_dir": "", "web_analytics_tag": null, "web_analytics_token": null,
    });
    if let Some(patch) = &body.build_config {
        merge(&mut build_config, patch);
    }
    let taken = sim.config.taken_project_names.clone();
    let max_projects = sim.config.max_projects_per_account;
    let now = Utc::now();
    let result = sim.mutate(|state| {
        let key = project_key(&account_id, &name);
        if state.projects.contains_key(&key) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::PAGES_PROJECT_EXISTS,
                "A project with this name already exists. Choose a different project name.",
            ));
        }
        let prefix = format!("{account_id}/");
        let in_account = state
            .projects
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .count();
        if in_account >= max_projects {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::PAGES_PROJECT_LIMIT,
                format!(
                    "You have reached the maximum number of projects ({max_projects}) for this account."
                ),
            ));
        }
        let subdomain_used = |label: &str| {
            let sub = format!("{label}.pages.dev");
            state.projects.values().any(|p| p.subdomain == sub)
        };
        let mut label = name.clone();
        if taken.iter().any(|t| t == &name) || subdomain_used(&label) {
            // Like the dashboard: the name plus a few random characters.
            let mut rng = rand::rng();
            loop {
                let suffix: String = (0..3)
                    .map(|_| {
                        let i = rng.random_range(0..36u32);
                        char::from_digit(i, 36).unwrap_or('x')
                    })
                    .collect();
                label = format!("{name}-{suffix}");
                if !subdomain_used(&label) {
                    break;
                }
            }
        }
        let project = Project {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account_id.clone(),
            name: name.clone(),
            subdomain: format!("{label}.pages.dev"),
            production_branch,
            created_on: now,
            deployment_configs,
            build_config,
            latest_deployment_id: None,
            production_history: Vec::new(),
        };
        let json = project_json(state, &project, now);
        state.projects.insert(key, project);
        Ok(json)
    })?;
    sim.stats.bump(|s| s.projects_created += 1);
    Ok(ok(result))
}

pub async fn get_project(
    State(sim): Sim,
    Path((account_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let state = sim.lock();
    let project = find_project(&state, &account_id, &name)?;
    Ok(ok(project_json(&state, project, Utc::now())))
}

pub async fn patch_project(
    State(sim): Sim,
    Path((account_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let patch: Map<String, Value> = parse_json(&body, codes::PAGES_BAD_REQUEST)?;
    let result = sim.mutate(|state| {
        let key = project_key(&account_id, &name);
        let project = state
            .projects
            .get_mut(&key)
            .ok_or_else(ApiError::project_not_found)?;
        if let Some(branch) = patch.get("production_branch") {
            match branch.as_str() {
                Some(b) if !b.trim().is_empty() => project.production_branch = b.to_owned(),
                _ => {
                    return Err(ApiError::pages_bad_request(
                        "production_branch must be a non-empty string.",
                    ));
                }
            }
        }
        if let Some(configs) = patch.get("deployment_configs") {
            merge(&mut project.deployment_configs, configs);
        }
        if let Some(build) = patch.get("build_config") {
            merge(&mut project.build_config, build);
        }
        let project = project.clone();
        Ok(project_json(state, &project, Utc::now()))
    })?;
    Ok(ok(result))
}

pub async fn delete_project(
    State(sim): Sim,
    Path((account_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    sim.mutate(|state| {
        let key = project_key(&account_id, &name);
        let project = state
            .projects
            .remove(&key)
            .ok_or_else(ApiError::project_not_found)?;
        state.deployments.retain(|_, d| d.project_id != project.id);
        let prefix = format!("{key}/");
        state.domains.retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    })?;
    Ok(ok(Value::Null))
}

pub async fn list_deployments(
    State(sim): Sim,
    Path((account_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let query = query_map(query.as_deref());
    let env = query.get("env").cloned();
    if let Some(e) = &env
        && e != "production"
        && e != "preview"
    {
        return Err(ApiError::pages_bad_request(
            "env must be production or preview.",
        ));
    }
    let page = Page::from_query(&query, 25, 1, 25);
    let now = Utc::now();
    let state = sim.lock();
    let project = find_project(&state, &account_id, &name)?;
    let mut deployments: Vec<&Deployment> = state
        .deployments
        .values()
        .filter(|d| d.project_id == project.id)
        .filter(|d| env.as_deref().is_none_or(|e| d.environment == e))
        .collect();
    deployments.sort_by(|a, b| b.created_on.cmp(&a.created_on).then(b.id.cmp(&a.id)));
    let (items, info) = page.slice(&deployments);
    let result = items
        .into_iter()
        .map(|d| deployment_json(&state, project, d, now))
        .collect();
    Ok(ok_list(result, info))
}

pub async fn get_deployment(
    State(sim): Sim,
    Path((account_id, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let state = sim.lock();
    let project = find_project(&state, &account_id, &name)?;
    let d = find_deployment(&state, project, &id)?;
    Ok(ok(deployment_json(&state, project, d, Utc::now())))
}

fn find_deployment<'a>(
    state: &'a SimState,
    project: &Project,
    id: &str,
) -> Result<&'a Deployment, ApiError> {
    state
        .deployments
        .get(id)
        .filter(|d| d.project_id == project.id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                codes::PAGES_DEPLOYMENT_NOT_FOUND,
                "Deployment not found.",
            )
        })
}

pub async fn delete_deployment(
    State(sim): Sim,
    Path((account_id, name, id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let force = query_map(query.as_deref())
        .get("force")
        .is_some_and(|f| f == "true");
    let now = Utc::now();
    sim.mutate(|state| {
        let key = project_key(&account_id, &name);
        let project = find_project(state, &account_id, &name)?.clone();
        let d = find_deployment(state, &project, &id)?;
        if project.canonical_deployment_id(now) == Some(id.as_str()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::PAGES_DEPLOYMENT_LIVE,
                "Cannot delete the active production deployment.",
            ));
        }
        // The newest deployment of a branch carries the branch alias: the API wants
        // `?force=true` to delete an aliased deployment.
        let newest_of_branch = state
            .deployments
            .values()
            .filter(|o| o.project_id == project.id && o.branch == d.branch)
            .max_by_key(|o| o.created_on)
            .is_some_and(|o| o.id == id);
        if newest_of_branch && !force {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::PAGES_DEPLOYMENT_ALIASED,
                "Cannot delete an aliased deployment without `?force=true`.",
            ));
        }
        state.deployments.remove(&id);
        let latest = state
            .deployments
            .values()
            .filter(|o| o.project_id == project.id)
            .max_by_key(|o| o.created_on)
            .map(|o| o.id.clone());
        if let Some(p) = state.projects.get_mut(&key) {
            p.production_history.retain(|(d, _)| d != &id);
            p.latest_deployment_id = latest;
        }
        Ok(())
    })?;
    Ok(ok(Value::Null))
}

pub async fn rollback_deployment(
    State(sim): Sim,
    Path((account_id, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let now = Utc::now();
    let result = sim.mutate(|state| {
        let key = project_key(&account_id, &name);
        let project = find_project(state, &account_id, &name)?.clone();
        let d = find_deployment(state, &project, &id)?.clone();
        // Only to successful production deployments (API docs).
        if d.environment != "production" || d.live_from > now {
            return Err(ApiError::pages_bad_request(
                "You can only roll back to a successful production deployment.",
            ));
        }
        let project = state
            .projects
            .get_mut(&key)
            .ok_or_else(ApiError::project_not_found)?;
        project.production_history.push((id.clone(), now));
        let project = project.clone();
        Ok(deployment_json(state, &project, &d, now))
    })?;
    sim.stats.bump(|s| s.rollbacks += 1);
    Ok(ok(result))
}

/// Retry: a new deployment of the same files and metadata (direct uploads have nothing to
/// rebuild, so it succeeds like the original).
pub async fn retry_deployment(
    State(sim): Sim,
    Path((account_id, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    let now = Utc::now();
    let delay = sim.config.deployment_delay;
    let result = sim.mutate(|state| {
        let key = project_key(&account_id, &name);
        let project = find_project(state, &account_id, &name)?.clone();
        let mut d = find_deployment(state, &project, &id)?.clone();
        let new_id = uuid::Uuid::new_v4().to_string();
        d.short_id = new_id[..8].to_owned();
        d.id = new_id;
        d.created_on = now;
        d.live_from = super::later(now, delay);
        // The environment follows the current production branch, as for a new deployment.
        d.environment = environment_of(&project, &d.branch).to_owned();
        publish(state, &key, d, now)
    })?;
    sim.stats.bump(|s| s.deployments_created += 1);
    Ok(ok(result))
}

pub async fn deployment_logs(
    State(sim): Sim,
    Path((account_id, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, false)?;
    let state = sim.lock();
    let project = find_project(&state, &account_id, &name)?;
    let d = find_deployment(&state, project, &id)?;
    let mut data = vec![
        json!({"line": "Initializing build environment...", "ts": ts(d.created_on)}),
        json!({"line": format!("Uploaded {} files", d.manifest.len()), "ts": ts(d.created_on)}),
    ];
    if d.live_from <= Utc::now() {
        data.push(json!({"line": "Success: Your site was deployed!", "ts": ts(d.live_from)}));
    }
    Ok(ok(
        json!({"total": data.len(), "includes_container_logs": false, "data": data}),
    ))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAGES_ASSET_TOO_LARGE,
            "Request body too large.",
        )
    } else {
        ApiError::pages_bad_request(format!("Malformed multipart body: {e}"))
    }
}

pub async fn create_deployment(
    State(sim): Sim,
    Path((account_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    sim.authorize_account(&headers, &account_id, true)?;
    find_project(&sim.lock(), &account_id, &name)?;
    let form = DeploymentForm::read(multipart).await?;
    let manifest = form.manifest(sim.config.max_file_count_allowed)?;
    let commit_dirty = form.commit_dirty()?;
    let now = Utc::now();
    let delay = sim.config.deployment_delay;
    let result = sim.mutate(|state| {
        check_assets_uploaded(state, &manifest)?;
        let key = project_key(&account_id, &name);
        let project = state
            .projects
            .get(&key)
            .ok_or_else(ApiError::project_not_found)?;
        let branch = form
            .fields
            .get("branch")
            .filter(|b| !b.is_empty())
            .cloned()
            .unwrap_or_else(|| project.production_branch.clone());
        let id = uuid::Uuid::new_v4().to_string();
        let deployment = Deployment {
            short_id: id[..8].to_owned(),
            id,
            account_id: account_id.clone(),
            project_id: project.id.clone(),
            project_name: project.name.clone(),
            environment: environment_of(project, &branch).to_owned(),
            branch,
            commit_hash: form.fields.get("commit_hash").cloned(),
            commit_message: form.fields.get("commit_message").cloned(),
            commit_dirty,
            manifest,
            headers_file: form.fields.get("_headers").cloned(),
            redirects_file: form.fields.get("_redirects").cloned(),
            uses_functions: form.uses_functions,
            created_on: now,
            live_from: super::later(now, delay),
        };
        publish(state, &key, deployment, now)
    })?;
    sim.stats.bump(|s| s.deployments_created += 1);
    Ok(ok(result))
}

/// The environment a deployment of `branch` goes to: production for the project's production
/// branch, preview otherwise (as for a new deployment and a retry).
fn environment_of(project: &Project, branch: &str) -> &'static str {
    if branch == project.production_branch {
        "production"
    } else {
        "preview"
    }
}

/// Records a new deployment as the project's latest (and, in production, the live one from its
/// `live_from`) and answers with its JSON. Shared by create and retry.
fn publish(
    state: &mut SimState,
    key: &str,
    deployment: Deployment,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let project = state
        .projects
        .get_mut(key)
        .ok_or_else(ApiError::project_not_found)?;
    project.latest_deployment_id = Some(deployment.id.clone());
    if deployment.environment == "production" {
        project
            .production_history
            .push((deployment.id.clone(), deployment.live_from));
    }
    let project = project.clone();
    let json = deployment_json(state, &project, &deployment, now);
    state.deployments.insert(deployment.id.clone(), deployment);
    Ok(json)
}

/// A deployment may only list files whose content was uploaded before (wrangler uploads the
/// missing ones first, then creates the deployment).
fn check_assets_uploaded(
    state: &SimState,
    manifest: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let missing: Vec<&String> = manifest
        .values()
        .filter(|h| !state.assets.contains_key(h.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sample: Vec<&str> = missing.iter().take(5).map(|s| s.as_str()).collect();
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::PAGES_MISSING_ASSETS,
        format!(
            "The manifest references {} file(s) that were never uploaded: {}",
            missing.len(),
            sample.join(", ")
        ),
    ))
}

/// The text fields of a direct-upload deployment's multipart body.
struct DeploymentForm {
    fields: BTreeMap<String, String>,
    uses_functions: bool,
}

impl DeploymentForm {
    async fn read(multipart: Result<Multipart, MultipartRejection>) -> Result<Self, ApiError> {
        let mut multipart = multipart.map_err(|e| {
            ApiError::pages_bad_request(format!("Expected a multipart/form-data body: {e}"))
        })?;
        let mut form = DeploymentForm {
            fields: BTreeMap::new(),
            uses_functions: false,
        };
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let field_name = field.name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(multipart_error)?;
            match field_name.as_str() {
                "_worker.bundle" | "_worker.js" => form.uses_functions = true,
                "manifest" | "branch" | "commit_hash" | "commit_message" | "commit_dirty"
                | "_headers" | "_redirects" => {
                    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                        ApiError::pages_bad_request(format!("{field_name} must be UTF-8 text."))
                    })?;
                    form.fields.insert(field_name, text);
                }
                // `_routes.json`, `functions-filepath-routing-config.json`, config hashes:
                // accepted and not needed to serve static assets.
                _ => {}
            }
        }
        Ok(form)
    }

    /// The manifest (path → asset hash): required, paths absolute, within the file limit.
    fn manifest(&self, max_files: u64) -> Result<BTreeMap<String, String>, ApiError> {
        let text = self
            .fields
            .get("manifest")
            .ok_or_else(|| ApiError::pages_bad_request("A manifest is required."))?;
        let manifest: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| ApiError::pages_bad_request(format!("Invalid manifest: {e}")))?;
        if let Some(bad) = manifest.keys().find(|k| !k.starts_with('/')) {
            return Err(ApiError::pages_bad_request(format!(
                "Invalid manifest: path {bad:?} must start with '/'."
            )));
        }
        if manifest.len() as u64 > max_files {
            return Err(ApiError::pages_bad_request(format!(
                "Deployments are limited to {max_files} files; the manifest lists {}.",
                manifest.len()
            )));
        }
        Ok(manifest)
    }

    fn commit_dirty(&self) -> Result<Option<bool>, ApiError> {
        match self.fields.get("commit_dirty").map(String::as_str) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::pages_bad_request(
                "commit_dirty must be \"true\" or \"false\".",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert!(valid_project_name("intelli-acme"));
        assert!(valid_project_name("0abc"));
        assert!(valid_project_name(&"a".repeat(58)));
        assert!(!valid_project_name(&"a".repeat(59)));
        assert!(!valid_project_name("-abc"));
        assert!(!valid_project_name("abc-"));
        assert!(!valid_project_name("Abc"));
        assert!(!valid_project_name("a_b"));
        assert!(!valid_project_name(""));
    }

    #[test]
    fn merge_deletes_nulls() {
        let mut v = json!({"production": {"env_vars": {"A": {"value": "1"}, "B": {"value": "2"}}}});
        merge(
            &mut v,
            &json!({"production": {"env_vars": {"A": null, "C": {"value": "3"}}}}),
        );
        assert_eq!(
            v,
            json!({"production": {"env_vars": {"B": {"value": "2"}, "C": {"value": "3"}}}})
        );
    }

    #[test]
    fn branch_aliases() {
        assert_eq!(branch_alias("feature/Login_Page"), "feature-login-page");
        assert_eq!(branch_alias("main"), "main");
    }
}
