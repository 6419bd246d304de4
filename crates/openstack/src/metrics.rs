//! Prometheus metrics of OpenStack requests: count and duration by service, method and status;
//! throttled (rate-limiter waits) and retried calls counted apart. The controller registers
//! them into its own registry; this module must not serve HTTP.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub service: String,
    pub method: String,
    /// HTTP status code, or `transport` / `timeout`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub service: String,
    pub method: String,
    /// e.g. `503`, `429`, `transport`, `reauth`.
    pub reason: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// Cheap to clone: all clones update the same series.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    throttled: Family<ServiceLabels, Counter>,
    throttled_seconds: Family<ServiceLabels, Counter<f64>>,
    retried: Family<RetryLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            inner: Arc::new(Inner {
                requests: Family::default(),
                duration: Family::new_with_constructor(duration_histogram),
                throttled: Family::default(),
                throttled_seconds: Family::default(),
                retried: Family::default(),
            }),
        }
    }

    /// Adds the series to `registry` (under the `openstack_` prefix).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("openstack");
        r.register(
            "requests",
            "OpenStack API requests by service, method and status",
            self.inner.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "OpenStack API request duration by service, method and status",
            self.inner.duration.clone(),
        );
        r.register(
            "requests_throttled",
            "OpenStack API requests that waited for the client-side rate limiter",
            self.inner.throttled.clone(),
        );
        r.register(
            "requests_throttled_seconds",
            "Total time OpenStack API requests waited for the client-side rate limiter",
            self.inner.throttled_seconds.clone(),
        );
        r.register(
            "requests_retried",
            "OpenStack API requests repeated after a transient failure",
            self.inner.retried.clone(),
        );
    }

    pub(crate) fn observe(&self, service: &str, method: &str, status: &str, took: Duration) {
        let l = RequestLabels {
            service: service.into(),
            method: method.into(),
            status: status.into(),
        };
        self.inner.requests.get_or_create(&l).inc();
        self.inner
            .duration
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    pub(crate) fn throttled(&self, service: &str, waited: Duration) {
        let l = ServiceLabels {
            service: service.into(),
        };
        self.inner.throttled.get_or_create(&l).inc();
        self.inner
            .throttled_seconds
            .get_or_create(&l)
            .inc_by(waited.as_secs_f64());
    }

    pub(crate) fn retried(&self, service: &str, method: &str, reason: &str) {
        let l = RetryLabels {
            service: service.into(),
            method: method.into(),
            reason: reason.into(),
        };
        self.inner.retried.get_or_create(&l).inc();
    }

    /// Current request count for one label set (for tests and doctor).
    pub fn request_count(&self, service: &str, method: &str, status: &str) -> u64 {
        let l = RequestLabels {
            service: service.into(),
            method: method.into(),
            status: status.into(),
        };
        self.inner.requests.get(&l).map(|c| c.get()).unwrap_or(0)
    }

    pub fn retried_count(&self, service: &str, method: &str, reason: &str) -> u64 {
        let l = RetryLabels {
            service: service.into(),
            method: method.into(),
            reason: reason.into(),
        };
        self.inner.retried.get(&l).map(|c| c.get()).unwrap_or(0)
    }

    pub fn throttled_count(&self, service: &str) -> u64 {
        self.inner
            .throttled
            .get(&ServiceLabels {
                service: service.into(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    }
}
