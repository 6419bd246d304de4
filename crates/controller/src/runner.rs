//! Wiring of a controller process: decide between the OpenStack backend and disabled mode
//! (SPEC §1.1), discover what `model` needs from the cloud and the cluster (generation, API
//! version, project, external network, node subnet, node ports, second-family subnet, cluster
//! identity), start the HTTP endpoints and run the engine — under leader election when asked.
//! Must not parse command lines or read files: the CLI hands over parsed values.

use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ListParams};
use kube::Client;
use model::config::CloudConfig;
use model::Environment;
use openstack::SessionOptions;
use tracing::{info, warn};

use crate::backend::Disabled;
use crate::cloud::openstack::OpenStackCloud;
use crate::connect;
use crate::engine::{self, Health, Settings};
use crate::leader::{self, LeaseConfig};
use crate::metrics::Metrics;
use crate::planner::{Context, Planner};
use crate::server;

/// Everything a controller process needs, already parsed.
pub struct RunConfig {
    pub client: Client,
    /// `None` when no cloud.conf was given: disabled mode.
    pub cloud: Option<CloudConfig>,
    pub cluster_name: String,
    pub settings: Settings,
    pub leader: Option<LeaseConfig>,
    pub metrics_addr: SocketAddr,
    pub health_addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the kube-system namespace (the cluster identity): {0}")]
    ClusterIdentity(#[source] kube::Error),
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
}

/// What cloud.conf and the cloud allow: a working backend, or why not.
pub enum Backend {
    OpenStack(Box<Planner<OpenStackCloud>>),
    Disabled(Disabled),
}

/// Further attempts when the cloud is not reachable yet at start-up.
const START_UP_RETRIES: u32 = 4;

const ENABLE_HINT: &str = "set [LoadBalancer] enabled = true and usable [Global] credentials in the --cloud-config file, check them with `openstack-lb-controller doctor`, then restart the controller";

fn disabled(why: impl Into<String>) -> Backend {
    let why = why.into();
    warn!(reason = %why, "load balancers are disabled; Services get no external IP");
    Backend::Disabled(Disabled {
        why: format!("load balancers are disabled: {why}; {ENABLE_HINT}"),
    })
}

/// UID of the `kube-system` namespace: the cluster-identity tag's value.
pub async fn cluster_uid(client: &Client) -> Result<String, kube::Error> {
    let ns = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await?;
    Ok(ns.metadata.uid.unwrap_or_default())
}

/// Authenticate, detect the LBaaS generation and discover the environment. Authentication
/// and catalog problems become disabled mode (with the cloud's message), never a crash loop.
pub async fn connect(
    config: Option<CloudConfig>,
    client: &Client,
    cluster_name: &str,
    cluster_uid: &str,
    os_metrics: openstack::Metrics,
) -> Backend {
    let config = match connect::enabled(config) {
        Ok(config) => config,
        Err(why) => return disabled(why.to_string()),
    };
    let options = SessionOptions {
        metrics: os_metrics,
        rate_limit: openstack::RateLimit::from_config(&config.metadata),
        ..SessionOptions::default()
    };
    match &options.rate_limit {
        Some(l) => info!(
            per_second = l.per_second,
            burst = l.burst,
            "OpenStack API rate limit ([Metadata] api-rate-limit / api-rate-burst)"
        ),
        None => info!("no client-side OpenStack API rate limit ([Metadata] api-rate-limit = 0)"),
    }
    // A cloud that is briefly unreachable at start-up should not disable the controller for
    // the rest of its life: a few bounded attempts before giving up.
    let opened = match connect::open(&config, options, START_UP_RETRIES).await {
        Ok(o) => o,
        Err(e) => return disabled(e.to_string()),
    };
    let features = opened.features().clone();
    info!(
        generation = %opened.generation,
        version = %features.version_text(),
        provider = ?features.provider,
        "connected to OpenStack"
    );
    let mut env = Environment::new(cluster_name, cluster_uid);
    env.project_id = opened.project_id.clone();
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for (what, e) in crate::discovery::discover(&config, &opened.neutron, &nodes, &mut env).await {
        warn!(error = %e, "{what}");
    }
    crate::discovery::warn_other_cluster_names(
        opened.named_lbs.as_ref(),
        cluster_name,
        cluster_uid,
    )
    .await;
    // The plans are made for exactly the features the cloud executes with.
    let planner = Planner::new(
        Arc::new(opened.cloud),
        Context {
            config,
            features,
            env,
        },
    );
    // Node ports and the second family's subnet, before the first Service is planned.
    planner.refresh_nodes(&nodes).await;
    Backend::OpenStack(Box::new(planner))
}

/// Run a controller process until `shutdown` resolves (Ok) or leadership is lost (Err).
pub async fn run(
    cfg: RunConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    let mut metrics = Metrics::new();
    let os_metrics = openstack::Metrics::new();
    os_metrics.register(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    let health = Arc::new(Health::default());

    let router = server::router(metrics.clone(), health.clone());
    let bound = server::serve(cfg.metrics_addr, router)
        .await
        .map_err(|source| RunError::Bind {
            addr: cfg.metrics_addr,
            source,
        })?;
    info!(addr = %bound, "serving /metrics, /healthz, /readyz");
    if cfg.health_addr != cfg.metrics_addr {
        let bound = server::serve(cfg.health_addr, server::health_router(health.clone()))
            .await
            .map_err(|source| RunError::Bind {
                addr: cfg.health_addr,
                source,
            })?;
        info!(addr = %bound, "serving /healthz, /readyz");
    }

    // One shutdown signal, seen both by the engine and by a replica still standing by.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let engine_stop = stopped(stop_rx.clone());

    let client = cfg.client.clone();
    let work = {
        let metrics = metrics.clone();
        let health = health.clone();
        let settings = cfg.settings.clone();
        let cluster_name = cfg.cluster_name.clone();
        let cloud = cfg.cloud;
        async move {
            let uid = cluster_uid(&client)
                .await
                .map_err(RunError::ClusterIdentity)?;
            match connect(cloud, &client, &cluster_name, &uid, os_metrics).await {
                Backend::OpenStack(p) => {
                    engine::run(client, Arc::new(*p), settings, metrics, health, engine_stop).await;
                }
                Backend::Disabled(d) => {
                    engine::run(client, Arc::new(d), settings, metrics, health, engine_stop).await;
                }
            }
            Ok::<(), RunError>(())
        }
    };
    match cfg.leader {
        None => work.await,
        Some(lease) => {
            let result = std::sync::Mutex::new(Ok(()));
            let r = &result;
            let standby = health.clone();
            {
                let elected = leader::lead(cfg.client, lease, health, async move {
                    let out = work.await;
                    *r.lock().unwrap_or_else(|e| e.into_inner()) = out;
                });
                let mut elected = std::pin::pin!(elected);
                tokio::select! {
                    led = &mut elected => led?,
                    () = stopped(stop_rx) => {
                        // Standing by: nothing runs, nothing to release. Leading: the engine got
                        // the same signal; let it finish and release the Lease.
                        if !standby.standby.load(std::sync::atomic::Ordering::Relaxed) {
                            elected.await?;
                        }
                    }
                }
            }
            result.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }
}
