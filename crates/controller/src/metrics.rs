//! The controller's Prometheus metrics (SPEC §7): reconciles, queue depth (exact, fed by the
//! engine's queue tracker), load balancers by
//! state, time to external IP by stage, oldest pending deletion. Owns the registry that
//! `/metrics` serves; other crates (the OpenStack client's request metrics) register into it
//! through [`Metrics::registry_mut`] before serving starts. Must not know about OpenStack.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn ip_histogram() -> Histogram {
    // 0.25 s .. ~17 min: LB provisioning ranges from a sandbox's instant to a real amphora.
    Histogram::new(exponential_buckets(0.25, 2.0, 13))
}

/// The state of one managed Service's load balancer, for the by-state gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LbState {
    Ready,
    Provisioning,
    Invalid,
    Error,
    Disabled,
    Deleting,
}

impl LbState {
    fn as_str(self) -> &'static str {
        match self {
            LbState::Ready => "ready",
            LbState::Provisioning => "provisioning",
            LbState::Invalid => "invalid",
            LbState::Error => "error",
            LbState::Disabled => "disabled",
            LbState::Deleting => "deleting",
        }
    }
    const ALL: [LbState; 6] = [
        LbState::Ready,
        LbState::Provisioning,
        LbState::Invalid,
        LbState::Error,
        LbState::Disabled,
        LbState::Deleting,
    ];
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    reconcile_errors: Family<Labels, Counter>,
    reconcile_duration: Family<Labels, Histogram, fn() -> Histogram>,
    time_to_ip: Family<Labels, Histogram, fn() -> Histogram>,
    queue_depth: Gauge,
    in_flight: Gauge,
    load_balancers: Family<Labels, Gauge>,
    oldest_pending_deletion: Gauge<f64, AtomicU64>,
    meltdown: Counter,
    orphans: Family<Labels, Gauge>,
    states: Mutex<HashMap<String, LbState>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("olbc");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile passes by outcome",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes by reason code",
            reconcile_errors.clone(),
        );
        let reconcile_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram as fn() -> Histogram,
            );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile pass by operation",
            reconcile_duration.clone(),
        );
        let time_to_ip = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            ip_histogram as fn() -> Histogram,
        );
        registry.register(
            "time_to_external_ip_seconds",
            "Time from Service creation to each stage (lb_active, fip_attached, status_written)",
            time_to_ip.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Services scheduled for a reconcile pass (by an event, a trigger or a requeue) or in one now",
            queue_depth.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "reconciles_in_flight",
            "Reconcile passes running now",
            in_flight.clone(),
        );
        let load_balancers = Family::<Labels, Gauge>::default();
        registry.register(
            "managed_load_balancers",
            "Managed Services by load-balancer state",
            load_balancers.clone(),
        );
        let oldest_pending_deletion = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_pending_deletion_seconds",
            "Age of the oldest Service waiting for its load balancer to be deleted",
            oldest_pending_deletion.clone(),
        );
        let meltdown = Counter::default();
        registry.register(
            "meltdown_protection",
            "Times the last known members were kept because no node was eligible",
            meltdown.clone(),
        );
        let orphans = Family::<Labels, Gauge>::default();
        registry.register(
            "orphans",
            "Cloud resources with this cluster's identity and no Service",
            orphans.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            time_to_ip,
            queue_depth,
            in_flight,
            load_balancers,
            oldest_pending_deletion,
            meltdown,
            orphans,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// For other crates to add their own metrics (call before the server starts).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn reconciled(&self, operation: &str, outcome: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&vec![
                ("operation".into(), operation.into()),
                ("outcome".into(), outcome.into()),
            ])
            .inc();
        self.reconcile_duration
            .get_or_create(&vec![("operation".into(), operation.into())])
            .observe(seconds);
    }

    pub fn failed(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc();
    }

    pub fn stage_reached(&self, stage: &str, seconds: f64) {
        self.time_to_ip
            .get_or_create(&vec![("stage".into(), stage.into())])
            .observe(seconds);
    }

    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    pub fn meltdown(&self) {
        self.meltdown.inc();
    }

    pub fn set_oldest_pending_deletion(&self, seconds: f64) {
        self.oldest_pending_deletion.set(seconds);
    }

    pub fn set_orphans(&self, kind: &str, count: i64) {
        self.orphans
            .get_or_create(&vec![("kind".into(), kind.into())])
            .set(count);
    }

    /// Record a Service's state; `None` forgets it (no longer managed). Refreshes the by-state
    /// gauge.
    pub fn set_state(&self, key: &str, state: Option<LbState>) {
        let Ok(mut states) = self.states.lock() else {
            return;
        };
        match state {
            Some(s) => {
                states.insert(key.to_string(), s);
            }
            None => {
                states.remove(key);
            }
        }
        let mut counts: HashMap<LbState, i64> = HashMap::new();
        for s in states.values() {
            *counts.entry(*s).or_default() += 1;
        }
        for s in LbState::ALL {
            self.load_balancers
                .get_or_create(&vec![("state".into(), s.as_str().into())])
                .set(counts.get(&s).copied().unwrap_or(0));
        }
    }

    /// The exact number of Services scheduled for a pass or in one (the engine's tracker).
    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.set(depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_feed_gauges_and_text_output() {
        let m = Metrics::new();
        m.set_state("a/x", Some(LbState::Provisioning));
        m.set_state("a/y", Some(LbState::Ready));
        m.set_state("a/z", Some(LbState::Provisioning));
        m.set_state("a/z", None);
        m.reconciled("ensure", "ready", 0.01);
        m.failed("CloudError");
        m.stage_reached("status_written", 3.0);
        let text = m.encode();
        assert!(
            text.contains("olbc_managed_load_balancers{state=\"provisioning\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("olbc_managed_load_balancers{state=\"ready\"} 1"),
            "{text}"
        );
        assert!(text.contains("olbc_queue_depth 0"), "{text}");
        m.set_queue_depth(3);
        assert!(m.encode().contains("olbc_queue_depth 3"));
        assert!(
            text.contains("olbc_reconciles_total{operation=\"ensure\",outcome=\"ready\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("olbc_reconcile_errors_total{reason=\"CloudError\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("olbc_time_to_external_ip_seconds_count{stage=\"status_written\"} 1"),
            "{text}"
        );
    }
}
