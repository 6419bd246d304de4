//! The one start-up decision about the cloud, shared by `run` (the controller), `plan` and the
//! CLI's other read-only commands: whether the cloud config lets the controller work at all
//! ([`enabled`], or the disabled reason), and, when it does, [`open`]: the session, the
//! detection of the load-balancer generation, the features plans are made for, and the
//! adapter built for exactly those. Callers differ only in patience (the controller retries a
//! briefly unreachable cloud, `plan` fails fast) and in how they present a refusal. Must not
//! discover the environment (that is [`crate::discovery`]) or decide anything about Services.

use std::time::Duration;

use model::config::CloudConfig;
use model::CloudFeatures;
use openstack::lbaas::{LbaasV2, LoadBalancerApi};
use openstack::{Neutron, Session, SessionOptions};
use tracing::warn;

use crate::cloud::openstack::OpenStackCloud;

/// Why the cloud config does not let the controller build load balancers (SPEC §1.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwitchedOff {
    #[error("no --cloud-config was given")]
    NoConfig,
    #[error("[LoadBalancer] enabled = false in the cloud config")]
    Disabled,
    #[error("no usable credentials ({0})")]
    NoCredentials(String),
}

/// The config when it lets the controller work; else why not. Checked in this order, by
/// every command, before any call to the cloud.
pub fn enabled(config: Option<CloudConfig>) -> Result<CloudConfig, SwitchedOff> {
    let config = config.ok_or(SwitchedOff::NoConfig)?;
    if !config.load_balancer.enabled {
        return Err(SwitchedOff::Disabled);
    }
    config
        .global
        .credential_kind()
        .map_err(|e| SwitchedOff::NoCredentials(e.to_string()))?;
    Ok(config)
}

/// Why the cloud could not be opened. The messages are the controller's disabled reasons.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("cannot set up the OpenStack session: {0}")]
    Session(openstack::Error),
    #[error("authentication failed: {0}")]
    Authentication(openstack::Error),
    #[error("cannot detect the load-balancer service: {0}")]
    Detection(openstack::Error),
    #[error("cannot read the Octavia API version: {0}")]
    OctaviaVersion(openstack::Error),
    #[error("no Neutron endpoint: {0}")]
    Neutron(openstack::Error),
    #[error("the cloud has no load-balancer service (no Octavia, no Neutron LBaaS extension)")]
    NoLoadBalancerService,
}

/// An opened cloud: the adapter, and what start-up discovery needs besides.
pub struct Opened {
    pub cloud: OpenStackCloud,
    pub neutron: Neutron,
    /// The LBaaS v2 client where load balancers have names and tags (not on LBaaS v1): for
    /// the start-up check of other cluster names.
    pub named_lbs: Option<LbaasV2>,
    /// Octavia, Neutron LBaaS v2 or v1, for logs and reports.
    pub generation: &'static str,
    /// The project the token is scoped to.
    pub project_id: Option<String>,
}

impl Opened {
    /// The features the cloud executes with: plans must be made for exactly these.
    pub fn features(&self) -> &CloudFeatures {
        self.cloud.features()
    }
}

/// Authenticate and detect the load-balancer service. `retries`: how many more times a
/// transient failure to reach Keystone is tried (after 4 s, 8 s, …) before giving up.
pub async fn open(
    config: &CloudConfig,
    options: SessionOptions,
    retries: u32,
) -> Result<Opened, Refused> {
    let mut attempt = 0u32;
    let (session, token) = loop {
        let failure = match Session::new(&config.global, &config.metadata, options.clone()).await {
            Ok(s) => match s.token_info().await {
                Ok(t) => break (s, t),
                Err(e) if e.is_transient() && attempt < retries => e,
                Err(e) => return Err(Refused::Authentication(e)),
            },
            Err(e) if e.is_transient() && attempt < retries => e,
            Err(e) => return Err(Refused::Session(e)),
        };
        warn!(error = %failure, "OpenStack not reachable yet");
        attempt += 1;
        tokio::time::sleep(Duration::from_secs(2u64 << attempt)).await;
    };
    let api = LoadBalancerApi::detect(&session, config.load_balancer.lbaas)
        .await
        .map_err(Refused::Detection)?;
    let provider = config.load_balancer.lb_provider.as_deref();
    let (lb, v1, features) = match &api {
        LoadBalancerApi::Octavia(c) => {
            let v = c.max_version().await.map_err(Refused::OctaviaVersion)?;
            let features = CloudFeatures::octavia(v.major, v.minor, provider);
            (c.clone(), None, features)
        }
        LoadBalancerApi::NeutronV2(c) => (c.clone(), None, CloudFeatures::neutron_v2(provider)),
        // LBaaS v1 lives under the same Neutron endpoint; the v2 client is never asked
        // anything there (the features say NeutronV1, so the model plans v1 steps only).
        LoadBalancerApi::NeutronV1(v1) => {
            let v2 = LbaasV2::neutron(&session).await.map_err(Refused::Neutron)?;
            (v2, Some(v1.clone()), CloudFeatures::neutron_v1())
        }
        LoadBalancerApi::Unavailable => return Err(Refused::NoLoadBalancerService),
    };
    let neutron = Neutron::new(&session).await.map_err(Refused::Neutron)?;
    let (cloud, named_lbs) = match v1 {
        Some(v1) => (OpenStackCloud::neutron_v1(lb, v1, neutron.clone()), None),
        None => (
            OpenStackCloud::new(lb.clone(), neutron.clone(), features),
            Some(lb),
        ),
    };
    let generation = cloud.features().generation.label();
    Ok(Opened {
        cloud,
        neutron,
        named_lbs,
        generation,
        project_id: token.project.as_ref().map(|p| p.id.clone()),
    })
}
