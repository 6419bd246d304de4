//! The exact queue depth ([`QueueTracker`]) and what gets enqueued when Nodes change (the
//! Services whose member set moved). Uses [`super::memory`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::ObjectRef;

use super::Engine;
use crate::backend::LoadBalancers;
use crate::status;

/// The exact queue depth: Services scheduled for a pass (by a watch event, a Node-driven or
/// resync trigger, or a requeue of unfinished work) or in one now. Converged Services are not
/// scheduled at all (no periodic requeue), so they never count.
#[derive(Debug, Default)]
pub struct QueueTracker {
    inner: Mutex<(HashSet<String>, HashSet<String>)>,
}

impl QueueTracker {
    fn with<T>(&self, f: impl FnOnce(&mut HashSet<String>, &mut HashSet<String>) -> T) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (pending, running) = &mut *g;
        f(pending, running);
        pending.union(running).count()
    }
    /// A pass was asked for; returns the new depth.
    pub fn scheduled(&self, key: &str) -> usize {
        self.with(|p, _| p.insert(key.to_string()))
    }
    /// A pass started (the scheduler hands a key over exactly once per run).
    pub fn started(&self, key: &str) -> usize {
        self.with(|p, r| {
            p.remove(key);
            r.insert(key.to_string())
        })
    }
    /// A pass ended; `requeued`: it asked to run again (now or after a backoff).
    pub fn finished(&self, key: &str, requeued: bool) -> usize {
        self.with(|p, r| {
            r.remove(key);
            if requeued {
                p.insert(key.to_string());
            }
        })
    }
    /// A scheduled key will never run (its object left the cache first).
    pub fn dropped(&self, key: &str) -> usize {
        self.with(|p, _| p.remove(key))
    }
    pub fn depth(&self) -> usize {
        self.with(|_, _| ())
    }
}

/// `namespace/name` of a queued reference, as [`status::key`] spells it for a Service.
pub(super) fn key_of(r: &ObjectRef<Service>) -> String {
    format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name)
}

impl<B: LoadBalancers> Engine<B> {
    /// Enqueue decision for Node changes: the keys whose member fingerprint moved.
    pub(super) fn changed_member_sets(&self, services: &[Arc<Service>]) -> Vec<ObjectRef<Service>> {
        let nodes = self.nodes.state();
        let mut out = Vec::new();
        for svc in services {
            if !status::is_managed(svc, self.settings.class.as_deref())
                || svc.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let fp = self.backend.member_fingerprint(svc, &nodes);
            let key = status::key(svc);
            let changed = self.with_memory(&key, |m| m.fingerprint_moved(fp));
            if changed {
                out.push(ObjectRef::from_obj(svc.as_ref()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_depth_counts_scheduled_and_running_keys_once() {
        let q = QueueTracker::default();
        assert_eq!(q.scheduled("a/x"), 1);
        assert_eq!(q.scheduled("a/x"), 1, "deduplicated like the scheduler");
        assert_eq!(q.scheduled("a/y"), 2);
        assert_eq!(q.started("a/x"), 2);
        // An event while running: counted once, and still queued after the run.
        assert_eq!(q.scheduled("a/x"), 2);
        assert_eq!(q.finished("a/x", false), 2);
        assert_eq!(q.started("a/x"), 2);
        assert_eq!(q.finished("a/x", false), 1);
        // A busy LB: requeued after a backoff, so still queued.
        assert_eq!(q.started("a/y"), 1);
        assert_eq!(q.finished("a/y", true), 1);
        assert_eq!(q.started("a/y"), 1);
        assert_eq!(q.finished("a/y", false), 0);
        // A key whose object vanished before its turn.
        assert_eq!(q.scheduled("a/z"), 1);
        assert_eq!(q.dropped("a/z"), 0);
        assert_eq!(q.depth(), 0);
    }
}
