//! `openstack-lb-controller run`: flags (SPEC §2.3) → parsed configuration → `controller::runner`.
//! Reads the cloud config file and the kubeconfig; decides nothing about load balancers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use controller::kube::config::{KubeConfigOptions, Kubeconfig};
use controller::kube::{Client, Config};
use controller::leader::LeaseConfig;
use controller::runner::{self, RunConfig};
use controller::Settings;
use model::config::values::parse_duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// cloud.conf (OCCM format). Without it the controller runs disabled (no cloud calls).
    #[arg(long, value_name = "FILE", env = "OLBC_CLOUD_CONFIG")]
    cloud_config: Option<PathBuf>,
    /// kubeconfig file; default: in-cluster, else KUBECONFIG / ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Cluster name used in load-balancer names (`kube_service_<cluster-name>_<ns>_<name>`).
    #[arg(long, default_value = "kubernetes")]
    cluster_name: String,
    /// Handle Services of this spec.loadBalancerClass (and those without one); default: only
    /// Services without a class.
    #[arg(long)]
    load_balancer_class: Option<String>,
    /// Services reconciled in parallel.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Drift resync period (Go-style duration: 5m, 30s, 1h).
    #[arg(long, default_value = "5m", value_parser = duration)]
    resync_period: Duration,
    /// Run only while holding a coordination.k8s.io Lease; exit non-zero when it is lost.
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the Lease; default: POD_NAMESPACE (the downward API), else the in-cluster
    /// ServiceAccount namespace file, else kube-system.
    #[arg(long, value_name = "NS")]
    leader_elect_namespace: Option<String>,
    #[arg(long, default_value = "openstack-lb-controller")]
    lease_name: String,
    /// Identity in the Lease; default: POD_NAME, else hostname-pid.
    #[arg(long)]
    leader_elect_identity: Option<String>,
    /// Address of /metrics (also answers /healthz and /readyz).
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
    /// Delete load balancers and floating IPs of this cluster that belong to no Service.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    gc_orphans: bool,
    /// How long an orphan must stay orphaned before it is deleted.
    #[arg(long, default_value = "10m", value_parser = duration)]
    orphan_grace: Duration,
    /// Name of the clouds.yaml entry (implies use-clouds).
    #[arg(long)]
    cloud: Option<String>,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration (examples: 5m, 30s, 1h, 300)"))
}

/// Where the in-cluster ServiceAccount's namespace is mounted by the kubelet.
const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The Lease lives where the pod runs: a Role for Leases is only granted in the release's own
/// namespace, so a fixed default would make every install outside that namespace fail at run time.
fn lease_namespace(
    flag: Option<&str>,
    pod_namespace: Option<&str>,
    sa_namespace_file: Option<&str>,
) -> String {
    [flag, pod_namespace, sa_namespace_file]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|ns| !ns.is_empty())
        .unwrap_or("kube-system")
        .to_string()
}

fn identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "{}-{}",
        if host.is_empty() { "controller" } else { &host },
        std::process::id()
    )
}

async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => match Config::incluster() {
            Ok(c) => c,
            Err(_) => Config::from_kubeconfig(&KubeConfigOptions::default())
                .await
                .context(
                    "no --kubeconfig, not in a cluster, and no usable KUBECONFIG / ~/.kube/config",
                )?,
        },
    };
    Client::try_from(config).context("cannot build the Kubernetes client")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Invalid configuration is a start-up error naming the problem (SPEC §2.1); a missing
    // file argument is disabled mode, not an error.
    let cloud = match &args.cloud_config {
        Some(path) => {
            let loaded = crate::cloud_config::load(path, args.cloud.as_deref())
                .map_err(anyhow::Error::msg)?;
            for w in &loaded.warnings {
                tracing::warn!(file = %path.display(), "{w}");
            }
            Some(loaded.config)
        }
        None => None,
    };
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let identity = args.leader_elect_identity.clone().unwrap_or_else(identity);
    let settings = Settings {
        class: args.load_balancer_class.clone(),
        concurrency: args.concurrency,
        resync_period: args.resync_period,
        controller_name: "openstack-lb-controller".into(),
        instance: Some(identity.clone()),
        gc_orphans: args.gc_orphans,
        orphan_grace: args.orphan_grace,
    };
    let leader = args.leader_elect.then(|| LeaseConfig {
        namespace: lease_namespace(
            args.leader_elect_namespace.as_deref(),
            std::env::var("POD_NAMESPACE").ok().as_deref(),
            std::fs::read_to_string(SA_NAMESPACE_FILE).ok().as_deref(),
        ),
        name: args.lease_name.clone(),
        identity: identity.clone(),
    });
    let cfg = RunConfig {
        client,
        cloud,
        cluster_name: args.cluster_name.clone(),
        settings,
        leader,
        metrics_addr: args.metrics_addr,
        health_addr: args.health_addr,
    };
    match runner::run(cfg, shutdown_signal()).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!(error = %e, "controller stopped");
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lease_namespace;

    #[test]
    fn lease_namespace_prefers_flag_then_pod_namespace_then_file() {
        assert_eq!(lease_namespace(Some("a"), Some("b"), Some("c\n")), "a");
        assert_eq!(lease_namespace(None, Some("b"), Some("c\n")), "b");
        assert_eq!(lease_namespace(None, None, Some("c\n")), "c");
        assert_eq!(lease_namespace(None, Some(""), Some("c")), "c");
        assert_eq!(lease_namespace(None, None, None), "kube-system");
        assert_eq!(lease_namespace(None, Some(" "), Some("")), "kube-system");
    }
}
