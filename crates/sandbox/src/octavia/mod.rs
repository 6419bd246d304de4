//! Octavia v2 load balancers (and the same model served as Neutron LBaaS v2): the object
//! store, the PENDING_* lifecycle and the HTTP API. It must not know how traffic is forwarded
//! (that is `dataplane`) nor how Neutron stores ports (it asks `neutron` through `net`).

pub mod api;
pub mod catalog;
pub mod codes;
pub mod error;
pub mod lifecycle;
pub mod model;
pub mod net;
pub mod query;
pub mod schema;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Router};

pub use model::OctaviaState;

use crate::state::{AppState, AuthContext};

/// Which API the router impersonates: the model is the same, URLs, wrappers and error
/// shapes differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Octavia v2 on its own endpoint: `GET /` version document, `/v2/lbaas/...`.
    Octavia,
    /// Neutron LBaaS v2, mounted by the Neutron listener under `/v2.0/lbaas/`.
    NeutronV2,
}

/// The kinds of load-balancer objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    LoadBalancer,
    Listener,
    Pool,
    Member,
    HealthMonitor,
}

impl Kind {
    /// The JSON wrapper key of one object.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "loadbalancer",
            Kind::Listener => "listener",
            Kind::Pool => "pool",
            Kind::Member => "member",
            Kind::HealthMonitor => "healthmonitor",
        }
    }
    /// The JSON wrapper key (and URL segment) of a collection.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "loadbalancers",
            Kind::Listener => "listeners",
            Kind::Pool => "pools",
            Kind::Member => "members",
            Kind::HealthMonitor => "healthmonitors",
        }
    }
    /// The name Octavia's messages use ("Load Balancer <id> not found.").
    pub fn display(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "Load Balancer",
            Kind::Listener => "Listener",
            Kind::Pool => "Pool",
            Kind::Member => "Member",
            Kind::HealthMonitor => "Health Monitor",
        }
    }
    /// The body argument's name in wsme's messages.
    pub fn argument(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "load_balancer",
            Kind::Listener => "listener_",
            Kind::Pool => "pool_",
            Kind::Member => "member_",
            Kind::HealthMonitor => "health_monitor_",
        }
    }
    /// The quota resource counted for this kind (Neutron LBaaS v2 used Neutron's names).
    pub fn quota_key(self, flavor: Flavor) -> &'static str {
        match (self, flavor) {
            (Kind::LoadBalancer, Flavor::Octavia) => "load_balancer",
            (Kind::LoadBalancer, Flavor::NeutronV2) => "loadbalancer",
            (Kind::HealthMonitor, Flavor::Octavia) => "health_monitor",
            (Kind::HealthMonitor, Flavor::NeutronV2) => "healthmonitor",
            (Kind::Listener, _) => "listener",
            (Kind::Pool, _) => "pool",
            (Kind::Member, _) => "member",
        }
    }
}

type S = State<AppState>;
type A = Extension<AuthContext>;
type U = OriginalUri;
type Q = Query<Vec<(String, String)>>;
type P = Path<String>;
type P2 = Path<(String, String)>;

/// The object routes of one flavor, relative to its `lbaas` root.
fn lbaas_routes(flavor: Flavor) -> Router<AppState> {
    let mut r = Router::new();
    for kind in [
        Kind::LoadBalancer,
        Kind::Listener,
        Kind::Pool,
        Kind::HealthMonitor,
    ] {
        let collection = format!("/{}", kind.plural());
        let item = format!("/{}/{{id}}", kind.plural());
        let create = if kind == Kind::LoadBalancer {
            post(move |s: S, a: A, u: U, b: Bytes| api::lb_create(flavor, s, a, u, b))
        } else {
            post(move |s: S, a: A, u: U, b: Bytes| api::child_create(kind, flavor, s, a, u, b))
        };
        r = r
            .route(
                &collection,
                get(move |s: S, a: A, u: U, q: Q| api::list(kind, flavor, s, a, u, q))
                    .merge(create),
            )
            .route(
                &item,
                get(move |s: S, a: A, u: U, p: P, q: Q| api::show(kind, flavor, s, a, u, p, q))
                    .put(move |s: S, a: A, u: U, p: P, b: Bytes| {
                        api::update(kind, flavor, s, a, u, p, b)
                    })
                    .delete(move |s: S, a: A, u: U, p: P, q: Q| {
                        api::delete(kind, flavor, s, a, u, p, q)
                    }),
            );
    }
    let status_path = match flavor {
        Flavor::Octavia => "/loadbalancers/{id}/status",
        Flavor::NeutronV2 => "/loadbalancers/{id}/statuses",
    };
    r.route(
        status_path,
        get(move |s: S, a: A, u: U, p: P| api::lb_status(flavor, s, a, u, p)),
    )
    .route(
        "/loadbalancers/{id}/stats",
        get(move |s: S, a: A, u: U, p: P| api::stats(Kind::LoadBalancer, flavor, s, a, u, p)),
    )
    .route(
        "/listeners/{id}/stats",
        get(move |s: S, a: A, u: U, p: P| api::stats(Kind::Listener, flavor, s, a, u, p)),
    )
    .route(
        "/pools/{id}/members",
        get(move |s: S, a: A, u: U, p: P, q: Q| api::members_list(flavor, s, a, u, p, q))
            .post(move |s: S, a: A, u: U, p: P, b: Bytes| api::member_create(flavor, s, a, u, p, b))
            .put(move |s: S, a: A, u: U, p: P, q: Q, b: Bytes| {
                api::members_batch(flavor, s, a, u, p, q, b)
            }),
    )
    .route(
        "/pools/{id}/members/{member_id}",
        get(move |s: S, a: A, u: U, p: P2, q: Q| api::member_show(flavor, s, a, u, p, q))
            .put(move |s: S, a: A, u: U, p: P2, b: Bytes| api::member_update(flavor, s, a, u, p, b))
            .delete(move |s: S, a: A, u: U, p: P2, q: Q| api::member_delete(flavor, s, a, u, p, q)),
    )
}

/// Octavia-only routes beside the objects: catalog, quotas, failover.
fn octavia_extras() -> Router<AppState> {
    use catalog as c;
    Router::new()
        .route(
            "/loadbalancers/{id}/failover",
            axum::routing::put(move |s: S, a: A, u: U, p: P| {
                api::lb_failover(Flavor::Octavia, s, a, u, p)
            }),
        )
        .route("/providers", get(c::providers))
        .route(
            "/providers/{name}/flavor_capabilities",
            get(c::provider_capabilities),
        )
        .route("/flavors", get(c::flavors))
        .route("/flavors/{id}", get(c::flavor_show))
        .route("/flavorprofiles", get(c::flavor_profiles))
        .route("/flavorprofiles/{id}", get(c::flavor_profile_show))
        .route("/availabilityzones", get(c::availability_zones))
        .route("/availabilityzones/{name}", get(c::availability_zone_show))
        .route("/quotas", get(c::quotas_list))
        .route("/quotas/defaults", get(c::quotas_defaults))
        .route(
            "/quotas/{id}",
            get(c::quota_show)
                .put(c::quota_update)
                .delete(c::quota_reset),
        )
        .route("/l7policies", get(|| c::empty("l7policies")))
}

/// The HTTP routes of one flavor. Octavia: mount at the root of the load-balancer endpoint.
/// NeutronV2: nest under `/v2.0/lbaas` of the network endpoint.
pub fn router(flavor: Flavor) -> Router<AppState> {
    match flavor {
        Flavor::Octavia => {
            let lbaas = || lbaas_routes(Flavor::Octavia).merge(octavia_extras());
            Router::new()
                .route("/", get(catalog::version_document_public))
                .route("/v2", get(catalog::version_current))
                .route("/v2.0", get(catalog::version_current))
                .nest("/v2/lbaas", lbaas())
                .nest("/v2.0/lbaas", lbaas())
                .route("/v2/octavia/amphorae", get(|| catalog::empty("amphorae")))
        }
        Flavor::NeutronV2 => lbaas_routes(Flavor::NeutronV2),
    }
}
