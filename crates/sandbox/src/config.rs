//! Start-up configuration of the sandbox: which LBaaS generation it impersonates, where it
//! listens, token lifetime, floating range, TLS and the fault rules / quota overrides given at
//! start. Pure data plus parsing of the compact command-line forms; it must not know about
//! HTTP handlers or the world state.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::faults::FaultRule;

/// Which load-balancing API generation the sandbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LbaasMode {
    /// Octavia v2 on its own endpoint (`load-balancer` in the catalog).
    #[default]
    Octavia,
    /// Neutron LBaaS v2 under the network endpoint at `/v2.0/lbaas/` (alias `lbaasv2`).
    NeutronV2,
    /// Neutron LBaaS v1 under the network endpoint at `/v2.0/lb/` (alias `lbaas`).
    NeutronV1,
}

impl FromStr for LbaasMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "octavia" => Ok(Self::Octavia),
            "neutron-v2" => Ok(Self::NeutronV2),
            "neutron-v1" => Ok(Self::NeutronV1),
            other => Err(format!(
                "unknown LBaaS generation {other:?}; accepted: octavia, neutron-v2, neutron-v1"
            )),
        }
    }
}

/// Fixed ports; 0 means "any free port" (what tests use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    pub keystone: u16,
    pub neutron: u16,
    pub octavia: u16,
    pub admin: u16,
}

/// One quota override given at start: `project` None means the default for every project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaOverride {
    pub project: Option<String>,
    pub resource: String,
    pub limit: i64,
}

impl FromStr for QuotaOverride {
    type Err = String;
    /// `resource=limit` or `project:resource=limit`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lhs, limit) = s
            .split_once('=')
            .ok_or_else(|| format!("quota override {s:?}: expected [project:]resource=limit"))?;
        let limit: i64 = limit.trim().parse().map_err(|_| {
            format!("quota override {s:?}: limit must be an integer (-1 = unlimited)")
        })?;
        let (project, resource) = match lhs.split_once(':') {
            Some((p, r)) => (Some(p.trim().to_string()), r.trim().to_string()),
            None => (None, lhs.trim().to_string()),
        };
        if resource.is_empty() {
            return Err(format!("quota override {s:?}: empty resource name"));
        }
        Ok(Self {
            project,
            resource,
            limit,
        })
    }
}

/// Everything `start` needs. `Default` gives what tests want: ephemeral ports, Octavia, no TLS.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub lbaas: LbaasMode,
    /// Newest Octavia API version advertised (e.g. "2.30"); `None` = the newest the sandbox knows.
    pub octavia_api_version: Option<String>,
    /// How long an Octavia object stays PENDING_* after each mutation.
    pub provisioning_delay: Duration,
    /// When set, each mutation's delay is drawn uniformly from
    /// `provisioning_delay..=provisioning_delay_max` instead (real amphorae vary widely: a
    /// benchmark with one fixed delay hides how a controller copes with stragglers).
    pub provisioning_delay_max: Option<Duration>,
    pub token_lifetime: Duration,
    pub region: String,
    /// Floating IPs are allocated from here; must be inside 127.0.0.0/8 so traffic stays local.
    pub floating_range: Ipv4Net,
    /// The subnet on the private network where node ports live (loopback, so e2e nodes fit).
    pub node_range: Ipv4Net,
    pub ports: Ports,
    pub bind: Ipv4Addr,
    /// Serve HTTPS with a freshly generated CA; the CA PEM is written to `tls_dir`.
    pub tls: bool,
    pub tls_dir: Option<PathBuf>,
    pub faults: Vec<FaultRule>,
    pub lb_error_after_create: bool,
    pub quota_overrides: Vec<QuotaOverride>,
}

impl SandboxConfig {
    /// The delay of one mutation: the fixed delay, or a uniform draw up to the maximum. A
    /// maximum below the minimum counts as no range (the CLI refuses it before start).
    pub fn draw_provisioning_delay(&self) -> Duration {
        match self.provisioning_delay_max {
            Some(max) if max > self.provisioning_delay => {
                use rand::Rng as _;
                let lo = self.provisioning_delay.as_millis() as u64;
                let hi = max.as_millis() as u64;
                Duration::from_millis(rand::thread_rng().gen_range(lo..=hi))
            }
            _ => self.provisioning_delay,
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            lbaas: LbaasMode::Octavia,
            octavia_api_version: None,
            provisioning_delay: Duration::from_millis(200),
            provisioning_delay_max: None,
            token_lifetime: Duration::from_secs(3600),
            region: "RegionOne".to_string(),
            floating_range: Ipv4Net::new(Ipv4Addr::new(127, 200, 0, 0), 16)
                .unwrap_or_else(|_| Ipv4Net::default()),
            node_range: Ipv4Net::new(Ipv4Addr::new(127, 100, 0, 0), 16)
                .unwrap_or_else(|_| Ipv4Net::default()),
            ports: Ports::default(),
            bind: Ipv4Addr::LOCALHOST,
            tls: false,
            tls_dir: None,
            faults: Vec::new(),
            lb_error_after_create: false,
            quota_overrides: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbaas_mode_parses_the_three_generations() {
        assert_eq!("octavia".parse::<LbaasMode>(), Ok(LbaasMode::Octavia));
        assert_eq!("neutron-v2".parse::<LbaasMode>(), Ok(LbaasMode::NeutronV2));
        assert_eq!("neutron-v1".parse::<LbaasMode>(), Ok(LbaasMode::NeutronV1));
        assert!("v3".parse::<LbaasMode>().is_err());
    }

    #[test]
    fn random_provisioning_delay_stays_in_its_range() {
        let mut cfg = SandboxConfig {
            provisioning_delay: Duration::from_millis(20),
            provisioning_delay_max: Some(Duration::from_millis(60)),
            ..SandboxConfig::default()
        };
        let draws: Vec<Duration> = (0..200).map(|_| cfg.draw_provisioning_delay()).collect();
        assert!(draws
            .iter()
            .all(|d| *d >= Duration::from_millis(20) && *d <= Duration::from_millis(60)));
        assert!(
            draws.iter().any(|d| *d != draws[0]),
            "200 draws from 41 values are not all equal"
        );
        cfg.provisioning_delay_max = None;
        assert_eq!(cfg.draw_provisioning_delay(), Duration::from_millis(20));
        cfg.provisioning_delay_max = Some(Duration::from_millis(5));
        assert_eq!(cfg.draw_provisioning_delay(), Duration::from_millis(20));
    }

    #[test]
    fn quota_override_forms() {
        let q: QuotaOverride = "floatingip=3".parse().unwrap();
        assert_eq!(
            q,
            QuotaOverride {
                project: None,
                resource: "floatingip".into(),
                limit: 3
            }
        );
        let q: QuotaOverride = "demo:load_balancer=-1".parse().unwrap();
        assert_eq!(q.project.as_deref(), Some("demo"));
        assert_eq!(q.limit, -1);
        assert!("floatingip".parse::<QuotaOverride>().is_err());
        assert!("floatingip=x".parse::<QuotaOverride>().is_err());
    }
}
