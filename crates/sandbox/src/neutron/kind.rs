//! The resource collections the Neutron API serves under /v2.0: URL, JSON keys, attributes.

use super::attrs::{self, Attr};

/// The resource collections served under /v2.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Network,
    Subnet,
    Port,
    FloatingIp,
    Router,
    SecurityGroup,
    SecurityGroupRule,
}

pub(super) const KINDS: [Kind; 7] = [
    Kind::Network,
    Kind::Subnet,
    Kind::Port,
    Kind::FloatingIp,
    Kind::Router,
    Kind::SecurityGroup,
    Kind::SecurityGroupRule,
];

impl Kind {
    pub(super) fn url(self) -> &'static str {
        match self {
            Kind::Network => "networks",
            Kind::Subnet => "subnets",
            Kind::Port => "ports",
            Kind::FloatingIp => "floatingips",
            Kind::Router => "routers",
            Kind::SecurityGroup => "security-groups",
            Kind::SecurityGroupRule => "security-group-rules",
        }
    }
    pub(super) fn plural(self) -> &'static str {
        match self {
            Kind::SecurityGroup => "security_groups",
            Kind::SecurityGroupRule => "security_group_rules",
            other => other.url(),
        }
    }
    pub(super) fn singular(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
            Kind::FloatingIp => "floatingip",
            Kind::Router => "router",
            Kind::SecurityGroup => "security_group",
            Kind::SecurityGroupRule => "security_group_rule",
        }
    }
    pub(super) fn attrs(self) -> &'static [Attr] {
        match self {
            Kind::Network => attrs::NETWORK,
            Kind::Subnet => attrs::SUBNET,
            Kind::Port => attrs::PORT,
            Kind::FloatingIp => attrs::FLOATINGIP,
            Kind::Router => attrs::ROUTER,
            Kind::SecurityGroup => attrs::SECURITY_GROUP,
            Kind::SecurityGroupRule => attrs::SECURITY_GROUP_RULE,
        }
    }
    pub(super) fn taggable(self) -> bool {
        self != Kind::SecurityGroupRule
    }
}
