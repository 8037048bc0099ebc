//! The simulator's HTTP server: one port for every vendor, the admin endpoints, and the
//! handle tests and `intelli sim serve` hold.
//!
//! Layout of the one port:
//! - `/v1/...`                               Supabase Management API
//! - `/__projects/{ref}/storage/v1/...`      per-project Supabase Storage API
//! - `/client/v4/...`                        Cloudflare v4 API (see `crate::sim::cloudflare`)
//! - `/__sites/{project}/...`                deployed Pages sites (also served by `Host`)
//! - `/__sim/...`                            admin: stats, state dump, faults, latency
//!
//! Connections are accepted by our own loop (not `axum::serve`) so that a fault can reset a
//! TCP connection on purpose, which is what a client sees when a proxy or the vendor dies
//! mid-request.

pub mod config;
pub mod middleware;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub use config::{
    CloudflareSettings, FaultKind, FaultRule, Latency, OrgConfig, SimConfig, SupabaseConfig, Vendor,
};
pub use middleware::{ConnControl, Instruments, RequestCount, Stats, instrument};

use crate::sim::cloudflare::{self, CloudflareSim};
use crate::sim::supabase::SupabaseSim;

/// A running simulator. Prefer [`SimHandle::shutdown`]; dropping it instead stops serving
/// (the server task is aborted) and, in memory-only mode, still drops the project databases
/// (best effort, from a helper thread).
pub struct SimHandle {
    addr: SocketAddr,
    base_url: String,
    project_url_template: String,
    inst: Arc<Instruments>,
    supabase: Arc<SupabaseSim>,
    cloudflare: Arc<CloudflareSim>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

/// Start a simulator as configured. Binds before returning, so the URLs are usable at once.
pub async fn start(config: SimConfig) -> Result<SimHandle> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // A wildcard bind is still reached through loopback by the tools on this machine.
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let base_url = if addr.is_ipv6() {
        format!("http://[{host}]:{}", addr.port())
    } else {
        format!("http://{host}:{}", addr.port())
    };
    let project_url_template = config
        .project_url_template
        .clone()
        .unwrap_or_else(|| "{base}/__projects/{ref}".to_string())
        .replace("{base}", &base_url)
        .replace("{port}", &addr.port().to_string());

    let seed = config.seed.unwrap_or_else(rand::random::<u64>);
    let inst = Arc::new(
        Instruments::new(seed, config.faults.clone(), config.latency.clone())
            .with_rate_limit_scale(config.rate_limit_scale)
            .with_fault_retry_after(
                config
                    .fault_retry_after_ms
                    .map(std::time::Duration::from_millis),
            ),
    );
    let cloudflare = Arc::new(
        CloudflareSim::new(config.cloudflare_config())
            .context("starting the simulated Cloudflare")?,
    );
    let supabase = SupabaseSim::start(&config, inst.clone(), project_url_template.clone()).await?;

    let app = build_router(inst.clone(), supabase.clone(), cloudflare.clone(), addr);
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(accept_loop(listener, app, stop_rx));
    Ok(SimHandle {
        addr,
        base_url,
        project_url_template,
        inst,
        supabase,
        cloudflare,
        stop,
        server: Some(server),
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }
    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Base URL of the Supabase Management API (paths start with `/v1`): `SUPABASE_API_URL`.
    pub fn supabase_api_url(&self) -> String {
        self.base_url.clone()
    }
    /// Base URL of the Cloudflare v4 API: `CLOUDFLARE_API_BASE_URL` (wrangler's name).
    pub fn cloudflare_api_url(&self) -> String {
        format!("{}/client/v4", self.base_url)
    }
    /// The per-project URL (what a site is built with as `VITE_SUPABASE_URL`; the Storage API
    /// is at `<this>/storage/v1`).
    pub fn project_url(&self, project_ref: &str) -> String {
        self.project_url_template.replace("{ref}", project_ref)
    }
    /// The template behind [`SimHandle::project_url`], with `{ref}` still in it.
    pub fn project_url_template(&self) -> &str {
        &self.project_url_template
    }
    /// A Supabase access token the simulator accepts.
    pub fn supabase_token(&self) -> String {
        self.supabase.example_token()
    }
    /// Direct connection string of a simulated project's database (`sim_<ref>` on the
    /// simulator's PostgreSQL server, with that server's credentials: do not print it).
    pub fn database_url(&self, project_ref: &str) -> Option<String> {
        self.supabase.database_url(project_ref)
    }
    /// The simulated Supabase side (projects, database URLs).
    pub fn supabase(&self) -> &Arc<SupabaseSim> {
        &self.supabase
    }
    /// The simulated Cloudflare (projects, deployments, domains).
    pub fn cloudflare(&self) -> &Arc<CloudflareSim> {
        &self.cloudflare
    }
    /// A Cloudflare API token the simulator accepts (`CLOUDFLARE_API_TOKEN`).
    pub fn cloudflare_token(&self) -> String {
        let tokens = &self.cloudflare.config().tokens;
        tokens
            .iter()
            .find(|t| !t.read_only)
            .or(tokens.first())
            .map(|t| t.value.clone())
            .unwrap_or_default()
    }
    /// The first simulated Cloudflare account (`CLOUDFLARE_ACCOUNT_ID`).
    pub fn cloudflare_account_id(&self) -> String {
        self.cloudflare
            .config()
            .account_ids
            .first()
            .cloned()
            .unwrap_or_default()
    }
    /// Where a deployed Pages project can be loaded without DNS: `<base>/__sites/<project>/`.
    /// (Requests whose `Host` is a project's pages.dev name or active custom domain are served
    /// too, on any path.)
    pub fn site_url(&self, project_name: &str) -> String {
        format!("{}/__sites/{project_name}/", self.base_url)
    }
    /// The shared instrumentation (to hand to a vendor router, or to read counters).
    pub fn instruments(&self) -> &Arc<Instruments> {
        &self.inst
    }
    /// Counters so far (the Cloudflare side's own counters under `cloudflare`).
    pub fn stats(&self) -> Stats {
        stats(&self.inst, &self.cloudflare)
    }
    /// Zero the counters.
    pub fn reset_stats(&self) {
        self.inst.reset_stats()
    }
    /// Replace the fault rules at run time.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.inst.set_faults(rules)
    }
    /// Replace the per-vendor latency at run time.
    pub fn set_latency(&self, latency: BTreeMap<Vendor, Latency>) {
        self.inst.set_latency(latency)
    }
    /// The JSON state dump (`GET /__sim/state`); secrets are left out.
    pub fn state_dump(&self) -> Value {
        state_dump(&self.supabase, &self.cloudflare)
    }

    /// Stop serving, finish background work, save state, and (without a state directory)
    /// drop the project databases.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let cloudflare = self
            .cloudflare
            .flush()
            .context("saving the simulated Cloudflare state");
        self.supabase.shutdown().await?;
        cloudflare
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // Dropped without `shutdown` (a panicking test, an early return): still remove the
            // memory-only project databases so nothing accumulates on the server.
            self.supabase.drop_databases_blocking();
        }
    }
}

fn state_dump(supabase: &SupabaseSim, cloudflare: &CloudflareSim) -> Value {
    json!({ "supabase": supabase.dump(), "cloudflare": cloudflare.dump() })
}

fn stats(inst: &Instruments, cloudflare: &CloudflareSim) -> Stats {
    let mut s = inst.stats();
    s.cloudflare = cloudflare.stats();
    s
}

fn build_router(
    inst: Arc<Instruments>,
    supabase: Arc<SupabaseSim>,
    cloudflare: Arc<CloudflareSim>,
    addr: SocketAddr,
) -> Router {
    let admin = Router::new()
        .route("/__sim/health", get(|| async { "ok" }))
        .route("/__sim/stats", get(admin_stats))
        .route("/__sim/stats/reset", post(admin_stats_reset))
        .route("/__sim/state", get(admin_state))
        .route("/__sim/faults", get(admin_get_faults).put(admin_put_faults))
        .route(
            "/__sim/latency",
            get(admin_get_latency).put(admin_put_latency),
        )
        .with_state(AdminState {
            inst: inst.clone(),
            supabase: supabase.clone(),
            cloudflare: cloudflare.clone(),
        });

    let app = Router::new()
        .merge(admin)
        .merge(crate::sim::supabase::router(supabase.clone(), &inst))
        .nest(
            "/client/v4",
            instrument(
                &inst,
                Vendor::Cloudflare,
                cloudflare::router(cloudflare.clone()),
            ),
        )
        .merge(instrument(
            &inst,
            Vendor::Cloudflare,
            cloudflare::sites_router(cloudflare.clone()),
        ))
        .fallback({
            let inst = inst.clone();
            move |req: Request| fallback(inst, req)
        });
    // Deployed sites answer by `Host` (pages.dev names, custom domains) before any routing,
    // so a browser pointed at them through a hosts entry or `curl -H Host:` sees the site.
    // `Router::layer` would run after routing (too late to rewrite the path for `<ref>.host`),
    // so the whole app becomes the fallback service of an outer router that has the layer.
    Router::new()
        .fallback_service(app)
        .layer(axum::middleware::from_fn_with_state(
            HostCtx {
                inst,
                supabase,
                cloudflare,
                own_host: addr.ip().to_string(),
            },
            host_dispatch,
        ))
}

#[derive(Clone)]
struct HostCtx {
    inst: Arc<Instruments>,
    supabase: Arc<SupabaseSim>,
    cloudflare: Arc<CloudflareSim>,
    own_host: String,
}

/// Whether `host` (without port) names this server rather than a simulated site.
fn is_own_host(host: &str, own: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.is_empty()
        || h == own
        || h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

async fn host_dispatch(
    State(ctx): State<HostCtx>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| match h.rsplit_once(':') {
            // Strip a port, but not the colons of a bare IPv6 literal.
            Some((name, port))
                if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') =>
            {
                name.to_owned()
            }
            _ => h.to_owned(),
        });
    if let Some(host) = host
        && !is_own_host(&host, &ctx.own_host)
    {
        // `<ref>.<anything>`: a project URL template like `http://{ref}.localhost:{port}`
        // (the shape of the vendor's `https://{ref}.supabase.co`) reaches that project's APIs.
        let first = host.split('.').next().unwrap_or("");
        if first.len() == 20
            && first.bytes().all(|b| b.is_ascii_lowercase())
            && ctx.supabase.has_project(first)
        {
            let mut req = req;
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            if let Ok(uri) = format!("/__projects/{first}{pq}").parse::<axum::http::Uri>() {
                *req.uri_mut() = uri;
            }
            return next.run(req).await;
        }
        let path = req.uri().path().to_owned();
        if let Some(resp) = cloudflare::serve_host(&ctx.cloudflare, &host, &path).await {
            ctx.inst.record_request(
                Vendor::Cloudflare,
                req.method(),
                "<site by host>",
                resp.status().as_u16(),
            );
            return resp;
        }
    }
    next.run(req).await
}

/// Unknown paths: answer like the vendor whose prefix the path has.
async fn fallback(inst: Arc<Instruments>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let vendor = if path.starts_with("/client/v4") || path.starts_with("/__sites") {
        Vendor::Cloudflare
    } else if path.starts_with("/__projects/") {
        Vendor::Storage
    } else {
        Vendor::Supabase
    };
    let resp = fallback_response(&method, &path);
    // Counted too: a client calling a path the simulator lacks should show up in the stats.
    inst.record_request(vendor, &method, "<unmatched>", resp.status().as_u16());
    resp
}

fn fallback_response(method: &axum::http::Method, path: &str) -> Response {
    if path.starts_with("/client/v4") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "success": false,
                "errors": [{ "code": 7003, "message": "Could not route to the requested path" }],
                "messages": [],
                "result": null,
            })),
        )
            .into_response();
    }
    if path.starts_with("/__projects/") {
        return crate::sim::supabase::storage_not_found_route(method, path);
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "message": format!("Cannot {method} {path}") })),
    )
        .into_response()
}

#[derive(Clone)]
struct AdminState {
    inst: Arc<Instruments>,
    supabase: Arc<SupabaseSim>,
    cloudflare: Arc<CloudflareSim>,
}

async fn admin_stats(State(s): State<AdminState>) -> axum::Json<Stats> {
    axum::Json(stats(&s.inst, &s.cloudflare))
}

async fn admin_stats_reset(State(s): State<AdminState>) -> StatusCode {
    s.inst.reset_stats();
    StatusCode::NO_CONTENT
}

async fn admin_state(State(s): State<AdminState>) -> axum::Json<Value> {
    axum::Json(state_dump(&s.supabase, &s.cloudflare))
}

async fn admin_get_faults(State(s): State<AdminState>) -> axum::Json<Vec<FaultRule>> {
    axum::Json(s.inst.faults())
}

async fn admin_put_faults(
    State(s): State<AdminState>,
    axum::Json(rules): axum::Json<Vec<FaultRule>>,
) -> axum::Json<Vec<FaultRule>> {
    s.inst.set_faults(rules);
    axum::Json(s.inst.faults())
}

async fn admin_get_latency(State(s): State<AdminState>) -> axum::Json<BTreeMap<Vendor, Latency>> {
    axum::Json(s.inst.latency())
}

async fn admin_put_latency(
    State(s): State<AdminState>,
    axum::Json(latency): axum::Json<BTreeMap<Vendor, Latency>>,
) -> axum::Json<BTreeMap<Vendor, Latency>> {
    s.inst.set_latency(latency);
    axum::Json(s.inst.latency())
}

async fn accept_loop(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _peer)) => {
                        conns.spawn(serve_connection(stream, app.clone(), stop.clone()));
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(stream: TcpStream, app: Router, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    // A second descriptor of the same socket, kept so a fault can set SO_LINGER=0 (close
    // sends RST, not FIN) after hyper owns the stream. The socket closes when both are gone.
    let twin = stream
        .into_std()
        .and_then(|std| std.try_clone().map(|twin| (std, twin)))
        .and_then(|(std, twin)| TcpStream::from_std(std).map(|s| (s, twin)));
    let (stream, twin) = match twin {
        Ok(pair) => pair,
        Err(_) => return,
    };
    let control = ConnControl::default();
    let ctl = control.clone();
    let svc = app.map_request(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = control.killed() => {
            let _ = socket2::SockRef::from(&twin).set_linger(Some(Duration::ZERO));
        }
        _ = stop.changed() => {}
    }
    // `conn` (declared after `twin`) drops first at the end of scope, then `twin`: that last
    // close is when the kernel really closes the socket (with RST if linger was set).
}
