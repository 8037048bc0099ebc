//! Serving deployed sites: `/__sites/{project}/…` and by `Host` (custom domain, pages.dev).
//!
//! Follows the Pages serving rules a Vite site relies on: `_redirects` first (301/302/303/307/308
//! redirects, 200 rewrites, 404 with a custom page; splats and `:placeholders`), then the asset
//! (`/x`, `/x.html`, `/x/index.html`), then the nearest `404.html` with status 404, else — no
//! 404 page at all — single-page-app fallback to `/index.html`; `_headers` rules (path globs,
//! `! Name` to detach) are applied to the response. Pretty URLs as on Pages: `/about` serves
//! `about.html`, and `/about.html`, `/dir/index.html`, `/dir` (only `dir/index.html` exists)
//! redirect with 308.
//!
//! `/__sites/{project}/…` is for curl and tests: redirects and a Vite build's absolute asset
//! URLs point at `/…`, outside the prefix. In a browser use the host form, which needs no DNS:
//! `http://<project>.pages.dev.localhost:PORT/` or `http://<custom domain>.localhost:PORT/`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::CloudflareSim;
use super::domains::domain_status;
use super::state::{Deployment, State as SimState};

/// What a host or `/__sites` path resolves to.
enum Target {
    Deployment(Box<Deployment>),
    /// Known project or domain that has nothing to serve (yet).
    Unavailable(StatusCode, &'static str),
}

fn canonical(state: &SimState, project: &super::state::Project) -> Target {
    match project
        .canonical_deployment_id(Utc::now())
        .and_then(|id| state.deployments.get(id))
    {
        Some(d) => Target::Deployment(Box::new(d.clone())),
        None => Target::Unavailable(StatusCode::NOT_FOUND, "Nothing is here yet.\n"),
    }
}

pub async fn site_root(
    State(sim): State<Arc<CloudflareSim>>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    serve_project(&sim, &project, &with_query("/", query)).await
}

pub async fn site_path(
    State(sim): State<Arc<CloudflareSim>>,
    Path((project, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    serve_project(&sim, &project, &with_query(&format!("/{path}"), query)).await
}

fn with_query(path: &str, query: Option<String>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

async fn serve_project(sim: &CloudflareSim, project: &str, path: &str) -> Response {
    let target = {
        let state = sim.lock();
        match state.projects.values().find(|p| p.name == project) {
            Some(p) => canonical(&state, p),
            None => Target::Unavailable(StatusCode::NOT_FOUND, "No such Pages project.\n"),
        }
    };
    respond(sim, target, path)
}

/// Serves the site a `Host` header names, or `None` when the host is not one of ours (the core
/// then routes the request normally). `path` may carry a query string.
pub async fn serve_host(sim: &CloudflareSim, host: &str, path: &str) -> Option<Response> {
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    // `<host>.localhost` reaches loopback in browsers without any DNS setup, so
    // `http://acme.intelliservice.io.localhost:PORT/` opens a client's site locally.
    let host = host.strip_suffix(".localhost").unwrap_or(&host).to_owned();
    let target = {
        let state = sim.lock();
        resolve_host(sim, &state, &host)?
    };
    Some(respond(sim, target, path))
}

fn resolve_host(sim: &CloudflareSim, state: &SimState, host: &str) -> Option<Target> {
    if host.ends_with(".pages.dev") {
        if let Some(p) = state.projects.values().find(|p| p.subdomain == host) {
            return Some(canonical(state, p));
        }
        // `<short_id>.<subdomain>` or `<branch alias>.<subdomain>`.
        let (label, rest) = host.split_once('.')?;
        let p = state.projects.values().find(|p| p.subdomain == rest)?;
        let mut of_project: Vec<&Deployment> = state
            .deployments
            .values()
            .filter(|d| d.project_id == p.id)
            .collect();
        of_project.sort_by_key(|d| std::cmp::Reverse(d.created_on));
        let found = of_project.iter().find(|d| d.short_id == label).or_else(|| {
            of_project
                .iter()
                .find(|d| super::pages::branch_alias(&d.branch) == label)
        });
        return Some(match found {
            Some(d) => Target::Deployment(Box::new((*d).clone())),
            None => Target::Unavailable(StatusCode::NOT_FOUND, "Nothing is here yet.\n"),
        });
    }
    let d = state.domains.values().find(|d| d.name == host)?;
    if domain_status(state, d, Utc::now(), sim.config.domain_activation_delay) != "active" {
        // What a visitor sees while the custom domain isn't set up: Cloudflare's 522.
        return Some(Target::Unavailable(
            StatusCode::from_u16(522).unwrap_or(StatusCode::BAD_GATEWAY),
            "error code: 522\n",
        ));
    }
    let project = state
        .projects
        .get(&super::pages::project_key(&d.account_id, &d.project_name))?;
    Some(canonical(state, project))
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn respond(sim: &CloudflareSim, target: Target, raw_path: &str) -> Response {
    sim.stats.bump(|s| s.site_requests += 1);
    let deployment = match target {
        Target::Deployment(d) => d,
        Target::Unavailable(status, text) => return plain(status, text),
    };
    let path_only = raw_path.split(['?', '#']).next().unwrap_or("/");
    let path = percent_decode(if path_only.is_empty() { "/" } else { path_only });

    let mut status = StatusCode::OK;
    let mut lookup = path.clone();
    let mut rewritten = false;
    if let Some(rules) = &deployment.redirects_file {
        for rule in parse_redirects(rules) {
            let Some(caps) = match_pattern(&rule.from, &path) else {
                continue;
            };
            let to = substitute(&rule.to, &caps);
            match rule.status {
                200 => {
                    lookup = to;
                    rewritten = true;
                }
                404 => {
                    lookup = to;
                    rewritten = true;
                    status = StatusCode::NOT_FOUND;
                }
                code => {
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() =
                        StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND);
                    if let Ok(v) = HeaderValue::from_str(&to) {
                        response.headers_mut().insert(header::LOCATION, v);
                    }
                    apply_headers(&deployment, &path, &mut response);
                    return response;
                }
            }
            break;
        }
    }

    // Pages' pretty URLs: `/about.html` → `/about`, `/dir/index.html` → `/dir/`, `/dir` →
    // `/dir/` when only `dir/index.html` exists (308, query string kept).
    if !rewritten && let Some(location) = pretty_url_redirect(&deployment, &path) {
        let query = raw_path
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
        if let Ok(v) = HeaderValue::from_str(&format!("{location}{query}")) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        apply_headers(&deployment, &path, &mut response);
        return response;
    }
    let found = find_asset(&deployment, &lookup).or_else(|| {
        // No such file: nearest 404.html (status 404), else SPA fallback to /index.html.
        if let Some(page) = nearest_404(&deployment, &lookup) {
            status = StatusCode::NOT_FOUND;
            Some(page)
        } else {
            deployment.manifest.get("/index.html").cloned()
        }
    });
    let Some(key) = found else {
        return plain(StatusCode::NOT_FOUND, "Not found\n");
    };
    let content_type = sim
        .lock()
        .assets
        .get(&key)
        .map(|a| a.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let Some(bytes) = sim.blobs.get(&key) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Asset content missing\n");
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    apply_headers(&deployment, &path, &mut response);
    response
}

fn pretty_url_redirect(d: &Deployment, path: &str) -> Option<String> {
    let has = |p: &str| d.manifest.contains_key(p);
    if let Some(dir) = path.strip_suffix("/index.html") {
        return has(path).then(|| format!("{dir}/"));
    }
    if let Some(stem) = path.strip_suffix(".html") {
        return (has(path) && !stem.is_empty()).then(|| stem.to_owned());
    }
    if let Some(stem) = path.strip_suffix('/') {
        let html = format!("{stem}.html");
        return (!stem.is_empty() && !has(&format!("{path}index.html")) && has(&html))
            .then(|| stem.to_owned());
    }
    (!has(path) && !has(&format!("{path}.html")) && has(&format!("{path}/index.html")))
        .then(|| format!("{path}/"))
}

fn find_asset(d: &Deployment, path: &str) -> Option<String> {
    let mut candidates = Vec::new();
    if path.ends_with('/') {
        candidates.push(format!("{path}index.html"));
    } else {
        candidates.push(path.to_owned());
        candidates.push(format!("{path}.html"));
        candidates.push(format!("{path}/index.html"));
    }
    candidates
        .iter()
        .find_map(|c| d.manifest.get(c.as_str()).cloned())
}

fn nearest_404(d: &Deployment, path: &str) -> Option<String> {
    let mut dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    loop {
        if let Some(k) = d.manifest.get(&format!("{dir}/404.html")) {
            return Some(k.clone());
        }
        match dir.rsplit_once('/') {
            Some((parent, _)) => dir = parent,
            None => return None,
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

struct Redirect {
    from: String,
    to: String,
    status: u16,
}

fn parse_redirects(text: &str) -> Vec<Redirect> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let from = parts.next()?;
            let to = parts.next()?;
            let status = parts
                .next()
                .and_then(|s| s.trim_end_matches('!').parse().ok())
                .unwrap_or(302);
            // Domain-level rules (`https://host/...`) don't apply to a path match.
            (from.starts_with('/')).then(|| Redirect {
                from: from.to_owned(),
                to: to.to_owned(),
                status,
            })
        })
        .collect()
}

enum Tok {
    Lit(char),
    Splat,
    Param(String),
}

fn tokenize(pattern: &str) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                toks.push(Tok::Splat);
                i += 1;
            }
            ':' if chars
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') =>
            {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                toks.push(Tok::Param(chars[start..end].iter().collect()));
                i = end;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    toks
}

/// Matches a `_redirects` / `_headers` path pattern; returns the captures (`splat`, names).
fn match_pattern(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
    let toks = tokenize(pattern);
    let chars: Vec<char> = path.chars().collect();
    let mut caps = HashMap::new();
    glob(&toks, &chars, &mut caps).then_some(caps)
}

fn glob(toks: &[Tok], s: &[char], caps: &mut HashMap<String, String>) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(c) => s.first() == Some(c) && glob(rest, &s[1..], caps),
        Tok::Splat => (0..=s.len()).rev().any(|n| {
            caps.insert("splat".into(), s[..n].iter().collect());
            glob(rest, &s[n..], caps)
        }),
        Tok::Param(name) => {
            let max = s.iter().position(|c| *c == '/').unwrap_or(s.len());
            (1..=max).rev().any(|n| {
                caps.insert(name.clone(), s[..n].iter().collect());
                glob(rest, &s[n..], caps)
            })
        }
    }
}

fn substitute(to: &str, caps: &HashMap<String, String>) -> String {
    let mut out = String::new();
    for tok in tokenize(to) {
        match tok {
            Tok::Lit(c) => out.push(c),
            Tok::Splat => out.push('*'),
            Tok::Param(name) => match caps.get(&name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push(':');
                    out.push_str(&name);
                }
            },
        }
    }
    out
}

/// `_headers`: a path pattern on its own line, then indented `Name: value` lines
/// (`! Name` removes a header set by an earlier matching rule).
fn apply_headers(d: &Deployment, path: &str, response: &mut Response) {
    let Some(text) = &d.headers_file else { return };
    let mut active = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            let pattern = line.trim();
            active = pattern.starts_with('/') && match_pattern(pattern, path).is_some();
            continue;
        }
        if !active {
            continue;
        }
        let entry = line.trim();
        if let Some(name) = entry.strip_prefix('!') {
            if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                response.headers_mut().remove(name);
            }
        } else if let Some((name, value)) = entry.split_once(':')
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            )
        {
            response.headers_mut().append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let caps = match_pattern("/blog/*", "/blog/a/b").unwrap_or_default();
        assert_eq!(caps.get("splat").map(String::as_str), Some("a/b"));
        let caps = match_pattern("/u/:id/edit", "/u/42/edit").unwrap_or_default();
        assert_eq!(caps.get("id").map(String::as_str), Some("42"));
        assert!(match_pattern("/u/:id/edit", "/u/4/2/edit").is_none());
        assert!(match_pattern("/*", "/anything").is_some());
        assert_eq!(
            substitute(
                "/new/:splat?x=1",
                &match_pattern("/old/*", "/old/p").unwrap_or_default()
            ),
            "/new/p?x=1"
        );
        assert_eq!(
            substitute("https://example.com/", &HashMap::new()),
            "https://example.com/"
        );
    }

    #[test]
    fn redirects_parse() {
        let rules = parse_redirects("# c\n/a /b 301\n/spa/* /index.html 200\n/c /d\n");
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].status, 301);
        assert_eq!(rules[2].status, 302);
    }

    #[test]
    fn decode() {
        assert_eq!(percent_decode("/a%20b"), "/a b");
        assert_eq!(percent_decode("/100%"), "/100%");
    }
}
