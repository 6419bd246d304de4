//! Starting and stopping the sandbox: one listener per service (so the catalog has distinct
//! endpoints), the middleware stack every route goes through (request log → faults → auth),
//! plain or TLS serving, and `SandboxHandle` with the connection details clients need
//! (OS_* variables, clouds.yaml, cloud.conf). It must not know any resource's semantics.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;
use http::StatusCode;
use model::config::Secret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{LbaasMode, SandboxConfig};
use crate::errors::{ApiError, SandboxError};
use crate::neutron::SeedIds;
use crate::state::{AppState, Endpoints, RequestLogEntry, ServiceKind, Shared, StateLost, World};

/// The request log keeps at most this many entries (oldest dropped) so a long benchmark
/// cannot exhaust memory.
const REQUEST_LOG_CAP: usize = 200_000;

/// How long `shutdown` waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Log-in details of one pre-created user.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    pub project_name: String,
    pub project_id: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
}

/// A running sandbox. Dropping it does not stop the servers; call `shutdown`.
pub struct SandboxHandle {
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
    ca_pem_path: Option<PathBuf>,
    admin: Credentials,
    demo: Credentials,
    app_cred_id: String,
    app_cred_secret: Secret,
    trust_id: String,
    trustee: Credentials,
}

/// Marker the auth middleware leaves on the response so the request log (outside it) can
/// name the caller.
#[derive(Clone)]
struct CallerName(String);

fn check_loopback(what: &str, net: &ipnet::Ipv4Net) -> Result<(), SandboxError> {
    if net.network().octets()[0] != 127 || net.prefix_len() < 8 {
        return Err(SandboxError::Config(format!(
            "{what} {net} must lie inside 127.0.0.0/8 so that all traffic stays on this machine"
        )));
    }
    Ok(())
}

async fn bind(
    cfg: &SandboxConfig,
    port: u16,
    what: &'static str,
) -> Result<TcpListener, SandboxError> {
    let addr = SocketAddr::from((cfg.bind, port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Bind {
            what,
            addr: addr.to_string(),
            source,
        })
}

fn base_url(scheme: &str, listener: &TcpListener) -> Result<String, SandboxError> {
    let addr = listener.local_addr().map_err(|source| SandboxError::Io {
        path: "listener address".to_string(),
        source,
    })?;
    Ok(format!("{scheme}://{addr}"))
}

/// Starts the sandbox: binds the four listeners, seeds the world and serves until
/// `SandboxHandle::shutdown`.
pub async fn start(cfg: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    check_loopback("floating range", &cfg.floating_range)?;
    check_loopback("node range", &cfg.node_range)?;
    let tls = if cfg.tls {
        let dir = cfg.tls_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "olbc-sandbox-tls-{}",
                uuid::Uuid::new_v4().simple()
            ))
        });
        Some(crate::tls::generate(&dir)?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let keystone_l = bind(&cfg, cfg.ports.keystone, "keystone").await?;
    let neutron_l = bind(&cfg, cfg.ports.neutron, "neutron").await?;
    let octavia_l = bind(&cfg, cfg.ports.octavia, "octavia").await?;
    let admin_l = bind(&cfg, cfg.ports.admin, "admin").await?;
    let endpoints = Endpoints {
        keystone: base_url(scheme, &keystone_l)?,
        neutron: base_url(scheme, &neutron_l)?,
        octavia: base_url(scheme, &octavia_l)?,
        // The admin API is always plain HTTP: it is a test hook, not part of the cloud.
        admin: base_url("http", &admin_l)?,
    };

    let world = World::new(&cfg);
    let shared = Arc::new(Shared {
        faults: parking_lot::Mutex::new(crate::faults::FaultState {
            rules: cfg.faults.clone(),
            lb_error_after_create: cfg.lb_error_after_create,
            injected: Default::default(),
        }),
        config: cfg,
        endpoints,
        world: parking_lot::Mutex::new(world),
        request_log: parking_lot::Mutex::new(Vec::new()),
        shutdown: CancellationToken::new(),
        dataplane: crate::dataplane::DataPlane::new(),
    });
    let state = AppState {
        inner: shared.clone(),
    };

    let (admin, demo, app_cred_id, app_cred_secret, trust_id, trustee) = {
        let world = shared.world.lock();
        let ks = &world.keystone;
        let creds = |user: &str| {
            let u = ks.user_by_name(user);
            let project = u
                .and_then(|u| u.default_project_id.clone())
                .unwrap_or_default();
            Credentials {
                username: user.to_string(),
                password: u.map(|u| u.password.clone()).unwrap_or_default(),
                project_name: ks
                    .project(&project)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                project_id: project,
                user_domain_name: crate::keystone::DEFAULT_DOMAIN_NAME.to_string(),
                project_domain_name: crate::keystone::DEFAULT_DOMAIN_NAME.to_string(),
            }
        };
        let ac = ks.application_credentials.first();
        let trust = ks.trusts.first();
        let trustee = trust
            .and_then(|t| ks.user(&t.trustee_user_id))
            .map(|u| creds(&u.name))
            .unwrap_or_else(|| creds("demo"));
        (
            creds("admin"),
            creds("demo"),
            ac.map(|a| a.id.clone()).unwrap_or_default(),
            ac.map(|a| a.secret.clone()).unwrap_or_default(),
            trust.map(|t| t.id.clone()).unwrap_or_default(),
            trustee,
        )
    };

    let lbaas = shared.config.lbaas;
    let mut neutron_router = crate::neutron::api::router();
    match lbaas {
        LbaasMode::Octavia => {}
        LbaasMode::NeutronV2 => {
            neutron_router = neutron_router.nest(
                "/v2.0/lbaas",
                crate::octavia::router(crate::octavia::Flavor::NeutronV2),
            );
        }
        LbaasMode::NeutronV1 => {
            neutron_router = neutron_router.nest("/v2.0/lb", crate::lbaas_v1::router());
        }
    }
    let octavia_router = match lbaas {
        LbaasMode::Octavia => crate::octavia::router(crate::octavia::Flavor::Octavia),
        // Outside Octavia mode there is no load-balancer service: the listener only 404s.
        _ => Router::new(),
    };
    let apps = [
        (ServiceKind::Identity, crate::keystone::router(), keystone_l),
        (ServiceKind::Network, neutron_router, neutron_l),
        (ServiceKind::LoadBalancer, octavia_router, octavia_l),
        (ServiceKind::Admin, crate::admin::router(), admin_l),
    ];
    let server_config = tls.as_ref().map(|t| t.server_config.clone());
    let mut tasks = Vec::new();
    for (service, router, listener) in apps {
        let app = wrap(router, &state, service);
        let token = shared.shutdown.clone();
        let task = match (&server_config, service) {
            (Some(cfg), s) if s != ServiceKind::Admin => {
                tokio::spawn(serve_tls(listener, app, cfg.clone(), token))
            }
            _ => tokio::spawn(async move {
                let result = axum::serve(listener, app)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await;
                if let Err(err) = result {
                    tracing::warn!(service = service.as_str(), %err, "sandbox listener stopped");
                }
            }),
        };
        tasks.push(task);
    }
    crate::dataplane::sync(&shared);
    tracing::info!(
        keystone = %shared.endpoints.keystone,
        neutron = %shared.endpoints.neutron,
        octavia = %shared.endpoints.octavia,
        admin = %shared.endpoints.admin,
        "sandbox listening"
    );
    Ok(SandboxHandle {
        state,
        tasks,
        ca_pem_path: tls.map(|t| t.ca_pem_path),
        admin,
        demo,
        app_cred_id,
        app_cred_secret,
        trust_id,
        trustee,
    })
}

/// See [`SandboxHandle::lose_state`]; shared with the admin API.
pub(crate) fn lose_state(state: &AppState, keep_nodes: bool) -> StateLost {
    let shared = &state.inner;
    let lost = shared.world.lock().lose_state(&shared.config, keep_nodes);
    // The floating IPs are gone: their front ends must stop listening.
    crate::dataplane::sync(shared);
    tracing::info!(
        public_network = %lost.networks.public_network_id,
        nodes_subnet = %lost.networks.nodes_subnet_id,
        node_ports = lost.node_ports.len(),
        "sandbox state lost; seed made again with new ids"
    );
    lost
}

/// Wraps a service's routes: the auth layer innermost, then faults, then the request log, and
/// a 404 fallback in the service's error shape.
fn wrap(router: Router<AppState>, state: &AppState, service: ServiceKind) -> Router {
    router
        .fallback(not_found)
        .layer(from_fn_with_state(
            (state.clone(), service),
            auth_middleware,
        ))
        .layer(from_fn_with_state(
            (state.clone(), service),
            crate::faults::middleware,
        ))
        .layer(from_fn_with_state((state.clone(), service), log_middleware))
        .with_state(state.clone())
}

async fn not_found(State(_state): State<AppState>, request: Request) -> Response {
    let service = request
        .extensions()
        .get::<ServiceKind>()
        .copied()
        .unwrap_or(ServiceKind::Admin);
    ApiError::new(
        service,
        StatusCode::NOT_FOUND,
        "The resource could not be found.",
    )
    .into_response()
}

/// Validates X-Auth-Token for Neutron and Octavia (Keystone checks its own tokens, the admin
/// API is open on loopback) and inserts the caller's `AuthContext`.
async fn auth_middleware(
    State((state, service)): State<(AppState, ServiceKind)>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(service);
    let needs_auth = matches!(service, ServiceKind::Network | ServiceKind::LoadBalancer)
        && request.uri().path() != "/";
    let token = request
        .headers()
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let caller = token.and_then(|t| {
        state
            .inner
            .world
            .lock()
            .keystone
            .authenticate(&t, Utc::now())
    });
    let name = caller.as_ref().map(|c| c.user_name.clone());
    match caller {
        Some(ctx) => {
            request.extensions_mut().insert(ctx);
        }
        None if needs_auth => {
            return ApiError::unauthorized().into_response();
        }
        None => {}
    }
    let mut response = next.run(request).await;
    if let Some(name) = name {
        response.extensions_mut().insert(CallerName(name));
    }
    response
}

static SEQ: AtomicU64 = AtomicU64::new(0);

async fn log_middleware(
    State((state, service)): State<(AppState, ServiceKind)>,
    request: Request,
    next: Next,
) -> Response {
    let time = Utc::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let response = next.run(request).await;
    let user = response
        .extensions()
        .get::<CallerName>()
        .map(|c| c.0.clone());
    let entry = RequestLogEntry {
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        time,
        service,
        method,
        path,
        query,
        status: response.status().as_u16(),
        user,
    };
    tracing::debug!(service = service.as_str(), method = %entry.method, path = %entry.path, status = entry.status, "request");
    if service != ServiceKind::Admin {
        let mut log = state.inner.request_log.lock();
        if log.len() >= REQUEST_LOG_CAP {
            let excess = log.len() + 1 - REQUEST_LOG_CAP;
            log.drain(..excess);
        }
        log.push(entry);
    }
    response
}

async fn serve_tls(
    listener: TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    token: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    // Bounded by the cancellation token: the loop ends when the sandbox shuts down.
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let tls = tokio::select! {
                _ = token.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => r,
            };
            let Ok(Ok(stream)) = tls else { return };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = token.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

impl SandboxHandle {
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Keystone v3 URL, as `OS_AUTH_URL` wants it.
    pub fn auth_url(&self) -> String {
        format!("{}/v3", self.state.inner.endpoints.keystone)
    }

    pub fn keystone_url(&self) -> &str {
        &self.state.inner.endpoints.keystone
    }

    pub fn neutron_url(&self) -> &str {
        &self.state.inner.endpoints.neutron
    }

    pub fn octavia_url(&self) -> &str {
        &self.state.inner.endpoints.octavia
    }

    pub fn admin_url(&self) -> &str {
        &self.state.inner.endpoints.admin
    }

    pub fn region(&self) -> &str {
        &self.state.inner.config.region
    }

    /// Where floating IPs come from, in words for the start-up banner: the range, and that
    /// addresses used by another sandbox on this machine are skipped (`address_claim`).
    pub fn floating_range_text(&self) -> String {
        format!(
            "{} (public-subnet); addresses another sandbox on this machine holds or listens on are skipped",
            self.state.inner.config.floating_range
        )
    }

    pub fn admin_credentials(&self) -> &Credentials {
        &self.admin
    }

    pub fn demo_credentials(&self) -> &Credentials {
        &self.demo
    }

    /// The admin user's application credential: (id, secret).
    pub fn application_credential(&self) -> (&str, &Secret) {
        (&self.app_cred_id, &self.app_cred_secret)
    }

    /// A trust from admin (trustor) to the returned trustee on project admin.
    pub fn trust(&self) -> (&str, &Credentials) {
        (&self.trust_id, &self.trustee)
    }

    /// Ids of the pre-created networks, subnets and router (the new ones after
    /// [`lose_state`](Self::lose_state)).
    pub fn seed(&self) -> SeedIds {
        self.state.inner.world.lock().neutron.seed.clone()
    }

    /// The cloud restarted with an empty database, behind the same endpoints and with the
    /// same users: every network, subnet, port, router, floating IP, security group and load
    /// balancer is gone and the seed is made again with new ids (`World::lose_state`); with
    /// `keep_nodes` the nodes' ports come back in the same step. Admin API: `POST /state/lose`.
    pub fn lose_state(&self, keep_nodes: bool) -> StateLost {
        lose_state(&self.state, keep_nodes)
    }

    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// `export OS_…` lines for the admin user (bash).
    pub fn openrc(&self) -> String {
        let c = &self.admin;
        let mut s = format!(
            "export OS_AUTH_TYPE=password\nexport OS_AUTH_URL={}\nexport OS_IDENTITY_API_VERSION=3\n\
             export OS_USERNAME={}\nexport OS_PASSWORD={}\nexport OS_PROJECT_NAME={}\n\
             export OS_USER_DOMAIN_NAME={}\nexport OS_PROJECT_DOMAIN_NAME={}\nexport OS_REGION_NAME={}\n\
             export OS_INTERFACE=public\n",
            self.auth_url(),
            c.username,
            c.password.expose(),
            c.project_name,
            c.user_domain_name,
            c.project_domain_name,
            self.region(),
        );
        if let Some(ca) = &self.ca_pem_path {
            s.push_str(&format!("export OS_CACERT={}\n", ca.display()));
        }
        s
    }

    /// A clouds.yaml with a `sandbox` cloud (admin), `sandbox-demo` and `sandbox-appcred`.
    pub fn clouds_yaml(&self) -> String {
        let cacert = self
            .ca_pem_path
            .as_ref()
            .map(|p| format!("    cacert: {}\n", p.display()))
            .unwrap_or_default();
        let user_cloud = |name: &str, c: &Credentials| {
            format!(
                "  {name}:\n    auth_type: password\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      project_name: {}\n      user_domain_name: {}\n      project_domain_name: {}\n    region_name: {}\n    interface: public\n    identity_api_version: 3\n{cacert}",
                self.auth_url(),
                c.username,
                c.password.expose(),
                c.project_name,
                c.user_domain_name,
                c.project_domain_name,
                self.region(),
            )
        };
        format!(
            "clouds:\n{}{}  sandbox-appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {}\n      application_credential_secret: {}\n    region_name: {}\n    interface: public\n    identity_api_version: 3\n{cacert}",
            user_cloud("sandbox", &self.admin),
            user_cloud("sandbox-demo", &self.demo),
            self.auth_url(),
            self.app_cred_id,
            self.app_cred_secret.expose(),
            self.region(),
        )
    }

    /// A cloud.conf for the controller (admin user, VIPs on the loopback `nodes` subnet,
    /// floating IPs from `public`).
    pub fn cloud_conf(&self) -> String {
        let seed = self.seed();
        format!(
            "{}floating-network-id = {}\nsubnet-id = {}\nnetwork-id = {}\n",
            self.cloud_conf_unpinned(),
            seed.public_network_id,
            seed.nodes_subnet_id,
            seed.private_network_id,
        )
    }

    /// [`cloud_conf`](Self::cloud_conf) without the networks' ids: the controller discovers
    /// them (the only external network; the nodes' subnet from the port holding a node's
    /// address), so it can follow a cloud rebuilt with new ids.
    pub fn cloud_conf_unpinned(&self) -> String {
        let c = &self.admin;
        let ca = self
            .ca_pem_path
            .as_ref()
            .map(|p| format!("ca-file = {}\n", p.display()))
            .unwrap_or_default();
        let lb = match self.state.inner.config.lbaas {
            LbaasMode::Octavia => "",
            LbaasMode::NeutronV2 => "use-octavia = false\n",
            LbaasMode::NeutronV1 => "use-octavia = false\nlb-version = v1\n",
        };
        format!(
            "[Global]\nauth-url = {}\nusername = {}\npassword = {}\ntenant-name = {}\n\
             user-domain-name = {}\ntenant-domain-name = {}\nregion = {}\n{ca}\n\
             [LoadBalancer]\nenabled = true\n{lb}",
            self.auth_url(),
            c.username,
            c.password.expose(),
            c.project_name,
            c.user_domain_name,
            c.project_domain_name,
            self.region(),
        )
    }

    /// Stops every listener and background task; waits briefly for open connections.
    pub async fn shutdown(self) {
        self.state.inner.shutdown.cancel();
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}
