//! What the cloud can do (SPEC §1.2): the LBaaS generation, the Octavia API version and the
//! provider, and the optional features they imply. Built by the controller from discovery
//! (catalog, extensions, GET `/` of the Octavia endpoint); here it is only data, so that every
//! capability decision of `desired` and `plan` is a pure function of it. Must not know how the
//! discovery is done.

use serde::{Deserialize, Serialize};

use crate::config::LbMethod;
pub use crate::config::LbaasGeneration;

/// The `lb_method` values LBaaS v1 accepts (no SOURCE_IP_PORT).
pub const V1_LB_METHODS: [&str; 3] = ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"];

/// v1 monitors probe the member's own port (there is no `monitor_port`), so an HTTP check of
/// kube-proxy's healthCheckNodePort is impossible: a TCP check of the NodePort stands in. For
/// externalTrafficPolicy: Local it still finds the nodes without endpoints, because kube-proxy
/// drops NodePort connections there; an HTTP check would hit the application instead.
pub const V1_MONITOR_TYPE: &str = "TCP";

/// Capabilities of the load-balancing service the controller talks to.
///
/// Build it with [`CloudFeatures::octavia`], [`CloudFeatures::neutron_v2`] or
/// [`CloudFeatures::neutron_v1`], which derive every flag from the version as SPEC §1.2 says;
/// the fields stay public so that a cloud that lies about its version can be corrected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudFeatures {
    pub generation: Generation,
    /// Octavia API version `(major, minor)` from GET `/`; `(2, 0)` for Neutron LBaaS.
    pub api_version: (u32, u32),
    /// The provider that will run our load balancers (`lb-provider`, else the cloud's default),
    /// lower-case, e.g. `amphora` or `ovn`. None = unknown, treated like amphora.
    pub provider: Option<String>,
    /// Listener `timeout_*` fields (Octavia 2.1).
    pub timeouts: bool,
    /// Tags on load balancers, listeners, pools (Octavia 2.5). Without them ownership is
    /// proven by name and description only.
    pub tags: bool,
    /// `flavor_id` (Octavia 2.6).
    pub flavors: bool,
    /// Listener `allowed_cidrs` (Octavia 2.12).
    pub allowed_cidrs: bool,
    /// `availability_zone` (Octavia 2.14).
    pub availability_zones: bool,
    /// Pool protocol PROXYV2 (Octavia 2.22).
    pub proxy_v2: bool,
    /// SCTP listeners and pools (Octavia 2.23).
    pub sctp: bool,
    /// `additional_vips` for dual-stack (Octavia 2.26).
    pub additional_vips: bool,
    /// DELETE `/loadbalancers/{id}?cascade=true`.
    pub cascade_delete: bool,
    /// One POST creating the LB with listeners, pools, members and monitors inside.
    pub fully_populated_create: bool,
    /// PUT `/pools/{id}/members` replacing the whole member set.
    pub batch_member_update: bool,
}

/// The LBaaS generation, serialisable mirror of [`LbaasGeneration`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    Octavia,
    NeutronV2,
    NeutronV1,
}

impl Generation {
    /// How reports name the generation.
    pub fn label(self) -> &'static str {
        match self {
            Generation::Octavia => "Octavia",
            Generation::NeutronV2 => "Neutron LBaaS v2",
            Generation::NeutronV1 => "Neutron LBaaS v1",
        }
    }
}

impl From<LbaasGeneration> for Generation {
    fn from(g: LbaasGeneration) -> Self {
        match g {
            LbaasGeneration::Octavia => Generation::Octavia,
            LbaasGeneration::NeutronV2 => Generation::NeutronV2,
            LbaasGeneration::NeutronV1 => Generation::NeutronV1,
        }
    }
}

impl CloudFeatures {
    /// Octavia at API version `major.minor`, flags per SPEC §1.2.
    pub fn octavia(major: u32, minor: u32, provider: Option<&str>) -> Self {
        let at_least = |m: u32| (major, minor) >= (2, m);
        CloudFeatures {
            generation: Generation::Octavia,
            api_version: (major, minor),
            provider: provider.map(|p| p.to_ascii_lowercase()),
            timeouts: at_least(1),
            tags: at_least(5),
            flavors: at_least(6),
            allowed_cidrs: at_least(12),
            availability_zones: at_least(14),
            proxy_v2: at_least(22),
            sctp: at_least(23),
            additional_vips: at_least(26),
            cascade_delete: true,
            fully_populated_create: true,
            batch_member_update: true,
        }
    }

    /// Neutron LBaaS v2: Octavia's object model without any of its later additions.
    pub fn neutron_v2(provider: Option<&str>) -> Self {
        CloudFeatures {
            generation: Generation::NeutronV2,
            api_version: (2, 0),
            provider: provider.map(|p| p.to_ascii_lowercase()),
            timeouts: false,
            tags: false,
            flavors: false,
            allowed_cidrs: false,
            availability_zones: false,
            proxy_v2: false,
            sctp: false,
            additional_vips: false,
            cascade_delete: false,
            fully_populated_create: false,
            batch_member_update: false,
        }
    }

    /// Neutron LBaaS v1: one pool, one VIP, one TCP port.
    pub fn neutron_v1() -> Self {
        CloudFeatures {
            generation: Generation::NeutronV1,
            ..CloudFeatures::neutron_v2(None)
        }
    }

    /// The OVN provider: L4 only, SOURCE_IP_PORT only, no HTTP monitors, no listener extras.
    pub fn is_ovn(&self) -> bool {
        self.provider.as_deref() == Some("ovn")
    }

    /// The provider that runs our load balancers, in words for messages: `amphora` when
    /// unknown (Octavia's stock default).
    pub fn provider_text(&self) -> &str {
        self.provider.as_deref().unwrap_or("amphora")
    }

    /// Whether the provider's driver refuses `method` with a 501 (found against Octavia 19:
    /// `Provider 'amphora' does not support a requested option: Amphora provider does not
    /// support SOURCE_IP_PORT algorithm.` on every pool create and update; a fully-populated
    /// create is accepted but an amphora then balances round robin). An unknown provider is
    /// Octavia's default, amphora. OVN's own rule (SOURCE_IP_PORT only) is applied where the
    /// algorithm is chosen, because there the method is replaced rather than refused.
    pub fn provider_refuses_lb_method(&self, method: LbMethod) -> bool {
        self.generation == Generation::Octavia
            && method == LbMethod::SourceIpPort
            && matches!(
                self.provider.as_deref(),
                None | Some("amphora" | "octavia" | "amphorav2")
            )
    }

    /// `2.26`-style text for messages.
    pub fn version_text(&self) -> String {
        format!("{}.{}", self.api_version.0, self.api_version.1)
    }
}
