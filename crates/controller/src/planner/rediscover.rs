//! Rediscovery (issue 14): what start-up discovery found and cloud.conf left open (the only
//! external network, the nodes' subnet and network) is looked for again when the cloud says
//! "not found" for an id in a plan, and every [`PERIOD`] at a resync, so a cloud rebuilt with
//! new ids is followed without a restart. Bounded: at most one lookup per [`MIN_GAP`] after a
//! "not found" ([`FAILED_GAP`] after a lookup the cloud failed), and a failed lookup keeps the
//! ids known so far. When the ids change, the
//! Services that met a "not found" are woken (their error backoff could last minutes). Must
//! not decide anything about Services: it only refreshes the planner's
//! [`Environment`](model::Environment) and says who should plan again.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::Planner;
use crate::cloud::{Cloud, Inventory, Resync};

/// How often the discovered ids are looked for again without a reason.
pub(super) const PERIOD: Duration = Duration::from_secs(600);
/// The least time between two lookups, so a run of "not found" answers costs one.
pub(super) const MIN_GAP: Duration = Duration::from_secs(60);
/// The least time after a lookup the cloud failed (a 5xx, a timeout): short, since the ids
/// are still unknown, yet not one lookup per "not found" while the cloud is down.
pub(super) const FAILED_GAP: Duration = Duration::from_secs(10);

/// What set off a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    NotFound,
    Periodic,
}

#[derive(Debug)]
pub(super) struct Discovery {
    /// Start-up discovery counts as the first lookup.
    pub(super) at: Instant,
    /// The last lookup failed, so the next may come after [`FAILED_GAP`].
    pub(super) failed: bool,
    /// The first node's InternalIP, the address the nodes' subnet is found from.
    pub(super) node_ip: Option<IpAddr>,
    /// Services whose steps met a "not found" since the ids last changed: woken when they
    /// change, since their error backoff (up to minutes) would otherwise outlast the cause.
    pub(super) missing: HashSet<String>,
    /// Counts the changes of the ids, so a pass can tell they changed since it began.
    pub(super) generation: u64,
}

impl Discovery {
    pub(super) fn new() -> Self {
        Discovery {
            at: Instant::now(),
            failed: false,
            node_ip: None,
            missing: HashSet::new(),
            generation: 0,
        }
    }
}

impl<C: Cloud + Inventory + Resync> Planner<C> {
    pub(super) fn discovery<T>(&self, f: impl FnOnce(&mut Discovery) -> T) -> T {
        f(&mut self.discovery.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn remember_node(&self, ip: Option<IpAddr>) {
        self.discovery(|d| d.node_ip = ip);
    }

    /// Look for the discovered ids again when `why` and the time since the last lookup allow;
    /// the ids that changed replace the old ones in the context, and the Services that met a
    /// "not found" are woken to plan on them. Whether the ids changed.
    pub(super) async fn rediscover(&self, why: Why) -> bool {
        let node_ip = self.discovery(|d| {
            let wait = match why {
                _ if d.failed => FAILED_GAP,
                Why::NotFound => MIN_GAP,
                Why::Periodic => PERIOD,
            };
            (d.at.elapsed() >= wait).then(|| {
                d.at = Instant::now();
                d.node_ip
            })
        });
        let Some(node_ip) = node_ip else {
            return false;
        };
        let ctx = self.context();
        let mut env = ctx.env.clone();
        let found = self.cloud.rediscover(&ctx.config, node_ip, &mut env).await;
        self.discovery(|d| d.failed = found.is_err());
        if let Err(e) = found {
            warn!(error = %e, ?why, retry_after = ?FAILED_GAP, "cannot look for the discovered ids again; keeping the known ones");
            return false;
        }
        let now = (
            &env.discovered_floating_network_id,
            &env.node_subnet_id,
            &env.node_network_id,
        );
        let before = (
            &ctx.env.discovered_floating_network_id,
            &ctx.env.node_subnet_id,
            &ctx.env.node_network_id,
        );
        if now == before {
            return false;
        }
        info!(
            ?why,
            floating_network = ?env.discovered_floating_network_id,
            node_subnet = ?env.node_subnet_id,
            node_network = ?env.node_network_id,
            "the cloud's ids changed; planning with the rediscovered ones"
        );
        // Onto the newest context: a node scan may have replaced it meanwhile.
        let mut next = (*self.context()).clone();
        next.env.discovered_floating_network_id = env.discovered_floating_network_id;
        next.env.node_subnet_id = env.node_subnet_id;
        next.env.node_network_id = env.node_network_id;
        self.set_context(next);
        let missing = self.discovery(|d| {
            d.generation += 1;
            std::mem::take(&mut d.missing)
        });
        self.watcher.wake(missing);
        true
    }
}
