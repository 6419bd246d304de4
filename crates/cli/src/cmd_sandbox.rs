//! `openstack-lb-controller sandbox`: serves a local OpenStack-compatible cloud (Keystone,
//! Neutron, Octavia or Neutron LBaaS) on 127.0.0.1 until interrupted, and prints how to reach
//! it (OS_* variables, a clouds.yaml entry, a cloud.conf). Argument parsing and wiring only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which load-balancing API to serve: octavia, neutron-v2 (LBaaS v2 under the network
    /// endpoint) or neutron-v1 (LBaaS v1).
    #[arg(long, default_value = "octavia", value_parser = parse_lbaas)]
    lbaas: sandbox::LbaasMode,
    /// Newest Octavia API version to advertise (e.g. 2.10); newer fields are then rejected.
    #[arg(long)]
    octavia_api_version: Option<String>,
    /// How long load-balancer objects stay PENDING_* after each change (e.g. 500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    provisioning_delay: Duration,
    /// Draw each change's delay uniformly between --provisioning-delay and this (e.g.
    /// `--provisioning-delay 20s --provisioning-delay-max 60s`, like real amphorae).
    #[arg(long, value_parser = parse_duration)]
    provisioning_delay_max: Option<Duration>,
    /// Keystone token lifetime (e.g. 1h, 90s).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    token_lifetime: Duration,
    #[arg(long, default_value = "RegionOne")]
    region: String,
    /// Floating IPs are allocated from this loopback range, skipping addresses another
    /// sandbox on this machine holds or listens on (so sandboxes can share the range).
    #[arg(long, default_value = "127.200.0.0/16")]
    floating_range: sandbox::ipnet::Ipv4Net,
    /// The loopback subnet `nodes` (on the private network) where node ports live.
    #[arg(long, default_value = "127.100.0.0/16")]
    node_range: sandbox::ipnet::Ipv4Net,
    /// Fixed ports (0 = any free port).
    #[arg(long, default_value_t = 0)]
    keystone_port: u16,
    #[arg(long, default_value_t = 0)]
    neutron_port: u16,
    #[arg(long, default_value_t = 0)]
    octavia_port: u16,
    #[arg(long, default_value_t = 0)]
    admin_port: u16,
    /// Serve HTTPS with a CA generated at start; its PEM is written to --tls-dir.
    #[arg(long)]
    tls: bool,
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// Fault rule, repeatable: `service=network,method=POST,status=500,latency=200ms,
    /// probability=0.5,path=^/v2.0/floatingips` (path last; all keys optional but one of
    /// status/latency/hold). `hold=30s` lets the request succeed and holds its answer;
    /// `times=N` applies the rule to the first N matching requests only.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Every new load balancer ends in ERROR instead of ACTIVE.
    #[arg(long)]
    lb_error_after_create: bool,
    /// Quota override, repeatable: `resource=limit` or `project:resource=limit` (-1 = unlimited).
    #[arg(long = "quota")]
    quotas: Vec<String>,
    /// Also write the OS_* variables (bash `export` lines) to this file.
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Also write the clouds.yaml to this file.
    #[arg(long)]
    clouds_yaml: Option<PathBuf>,
    /// Also write the controller's cloud.conf to this file.
    #[arg(long)]
    cloud_conf: Option<PathBuf>,
}

fn parse_lbaas(s: &str) -> Result<sandbox::LbaasMode, String> {
    s.parse()
}

/// Go-style durations as cloud.conf accepts them: `500ms`, `30s`, `2m`, `1h`, bare seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?}; use e.g. 500ms, 30s, 2m, 1h or bare seconds");
    let (number, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (s, 1000)
    };
    let value: u64 = number.trim().parse().map_err(|_| bad())?;
    value
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

fn write(path: &Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    if let Some(p) = path {
        std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let faults = args
        .faults
        .iter()
        .map(|f| f.parse::<sandbox::FaultRule>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let quota_overrides = args
        .quotas
        .iter()
        .map(|q| {
            q.parse::<sandbox::QuotaOverride>()
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(max) = args.provisioning_delay_max {
        if max < args.provisioning_delay {
            anyhow::bail!(
                "--provisioning-delay-max {max:?} is below --provisioning-delay {:?}; \
                 give a maximum at least as large as the minimum",
                args.provisioning_delay
            );
        }
    }
    let cfg = sandbox::SandboxConfig {
        lbaas: args.lbaas,
        octavia_api_version: args.octavia_api_version,
        provisioning_delay: args.provisioning_delay,
        provisioning_delay_max: args.provisioning_delay_max,
        token_lifetime: args.token_lifetime,
        region: args.region,
        floating_range: args.floating_range,
        node_range: args.node_range,
        ports: sandbox::Ports {
            keystone: args.keystone_port,
            neutron: args.neutron_port,
            octavia: args.octavia_port,
            admin: args.admin_port,
        },
        tls: args.tls,
        tls_dir: args.tls_dir,
        faults,
        lb_error_after_create: args.lb_error_after_create,
        quota_overrides,
        ..Default::default()
    };
    let handle = sandbox::start(cfg)
        .await
        .context("cannot start the sandbox")?;
    let openrc = handle.openrc();
    let clouds = handle.clouds_yaml();
    let conf = handle.cloud_conf();
    write(&args.clouds_yaml, &clouds)?;
    write(&args.cloud_conf, &conf)?;
    // The env file is written last: scripts wait for it as the "ready" signal.
    write(&args.env_file, &openrc)?;
    let (ac_id, ac_secret) = handle.application_credential();
    let (trust_id, trustee) = handle.trust();
    let seed = handle.seed();
    println!("# openstack-lb-controller sandbox is ready.");
    println!(
        "# Admin API (faults, quotas, request log, nodes): {}",
        handle.admin_url()
    );
    println!("# Floating IPs: {}", handle.floating_range_text());
    println!("#\n# --- OS_* variables (admin) ---\n{openrc}");
    println!("# --- clouds.yaml ---\n{clouds}");
    println!("# --- cloud.conf for the controller ---\n{conf}");
    println!("# --- other credentials ---");
    println!(
        "# demo user: demo / {} (project demo)",
        handle.demo_credentials().password.expose()
    );
    println!(
        "# application credential (admin): id {ac_id} secret {}",
        ac_secret.expose()
    );
    println!(
        "# trust: id {trust_id}, trustee {} / {}",
        trustee.username,
        trustee.password.expose()
    );
    println!(
        "# networks: public {} (subnet {}), private {} (subnets {} and nodes {}), router {}",
        seed.public_network_id,
        seed.public_subnet_id,
        seed.private_network_id,
        seed.private_subnet_id,
        seed.nodes_subnet_id,
        seed.router_id
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    wait_for_signal().await;
    tracing::info!("stopping the sandbox");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("soon").is_err());
    }
}
