//! Orphan collection: the cloud objects of this cluster that no Service accounts for, deleted
//! after a grace period. Uses no sibling module.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Service;
use tracing::{info, warn};

use super::Settings;
use crate::backend::{LoadBalancers, Owned, OwnedKind};
use crate::metrics::Metrics;
use crate::status;

/// The owned cloud objects no Service accounts for: not named after a Service this controller
/// manages (or is cleaning up), and not pointed at by any Service's `load-balancer-id`.
/// A floating IP is collected only together with an orphaned load balancer of the same
/// Service: alone, it may be one that `keep-floatingip` kept on purpose, and a kept address
/// looks exactly like a leaked one (our description, our tag). Floating IPs come first, so
/// an address is released before the LB it points at.
pub fn find_orphans(owned: &[Owned], services: &[Arc<Service>]) -> Vec<Owned> {
    // Any LoadBalancer Service, whatever its class: two instances of this controller (one
    // with a class, one without) tag their LBs with the same cluster identity, and one must
    // never collect the other's.
    let live: HashSet<String> = services
        .iter()
        .filter(|s| status::is_load_balancer(s) || status::has_finalizer(s))
        .map(|s| status::key(s))
        .collect();
    let referenced: HashSet<String> = services
        .iter()
        .filter_map(|s| {
            s.metadata
                .annotations
                .as_ref()?
                .get(status::ANN_LB_ID)
                .cloned()
        })
        .collect();
    let lbs: Vec<Owned> = owned
        .iter()
        .filter(|o| o.kind == OwnedKind::LoadBalancer)
        // Only LBs named after a Service: one with another name was brought by a user
        // (load-balancer-id) and is theirs even if it carries our tag.
        .filter(|o| o.service.as_ref().is_some_and(|k| !live.contains(k)))
        .filter(|o| !referenced.contains(&o.id))
        .cloned()
        .collect();
    let orphaned_services: HashSet<&String> =
        lbs.iter().filter_map(|o| o.service.as_ref()).collect();
    let mut out: Vec<Owned> = owned
        .iter()
        .filter(|o| o.kind == OwnedKind::FloatingIp)
        .filter(|o| {
            o.service
                .as_ref()
                .is_some_and(|k| orphaned_services.contains(k))
        })
        .cloned()
        .collect();
    out.extend(lbs);
    out
}

/// One orphan-collection round; `seen` remembers when each orphan was first noticed.
pub(super) async fn collect_orphans<B: LoadBalancers>(
    backend: &B,
    owned: Vec<Owned>,
    services: &[Arc<Service>],
    settings: &Settings,
    metrics: &Metrics,
    seen: &mut HashMap<Owned, Instant>,
) {
    let orphans = find_orphans(&owned, services);
    for kind in [OwnedKind::LoadBalancer, OwnedKind::FloatingIp] {
        metrics.set_orphans(
            kind.as_str(),
            orphans.iter().filter(|o| o.kind == kind).count() as i64,
        );
    }
    seen.retain(|o, _| orphans.contains(o));
    for o in orphans {
        let first = *seen.entry(o.clone()).or_insert_with(Instant::now);
        if first.elapsed() < settings.orphan_grace {
            warn!(kind = o.kind.as_str(), id = %o.id, label = %o.label, service = ?o.service,
                  grace = ?settings.orphan_grace, "orphan found; deleted if still orphaned after the grace period");
            continue;
        }
        match backend.delete_owned(&o).await {
            Ok(()) => {
                info!(kind = o.kind.as_str(), id = %o.id, label = %o.label, service = ?o.service, "orphan deleted");
                seen.remove(&o);
            }
            Err(e) => {
                warn!(kind = o.kind.as_str(), id = %o.id, error = %e.message, "cannot delete orphan")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::backend::{Deleted, Ensured, Failure};
    use k8s_openapi::api::core::v1::{Node, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    fn svc(ns: &str, name: &str, type_: &str, annotations: &[(&str, &str)]) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                ..Default::default()
            }),
            status: None,
        })
    }

    fn owned(kind: OwnedKind, id: &str, service: Option<&str>) -> Owned {
        Owned {
            kind,
            id: id.into(),
            service: service.map(String::from),
            label: id.into(),
        }
    }

    #[test]
    fn orphans_are_those_no_service_accounts_for() {
        let services = vec![
            svc("shop", "web", "LoadBalancer", &[]),
            svc("shop", "was-lb", "ClusterIP", &[]),
            svc(
                "shop",
                "shares",
                "LoadBalancer",
                &[(status::ANN_LB_ID, "lb-shared")],
            ),
        ];
        let all = vec![
            owned(OwnedKind::LoadBalancer, "lb-web", Some("shop/web")),
            owned(OwnedKind::FloatingIp, "fip-web", Some("shop/web")),
            owned(OwnedKind::LoadBalancer, "lb-gone", Some("shop/gone")),
            owned(OwnedKind::FloatingIp, "fip-gone", Some("shop/gone")),
            owned(OwnedKind::LoadBalancer, "lb-was", Some("shop/was-lb")),
            owned(OwnedKind::LoadBalancer, "lb-shared", Some("old/first")),
            owned(OwnedKind::LoadBalancer, "lb-unnamed", None),
        ];
        let ids: Vec<String> = find_orphans(&all, &services)
            .into_iter()
            .map(|o| o.id)
            .collect();
        // The FIP goes first, and only because its LB is orphaned too.
        assert_eq!(ids, vec!["fip-gone", "lb-gone", "lb-was"]);
        // A kept floating IP (its Service and LB gone) is never collected.
        let kept = vec![owned(OwnedKind::FloatingIp, "fip-kept", Some("shop/kept"))];
        assert!(find_orphans(&kept, &services).is_empty());
    }

    #[derive(Default)]
    struct Owning {
        owned: Vec<Owned>,
        deleted: Mutex<Vec<String>>,
    }

    impl LoadBalancers for Owning {
        fn member_fingerprint(&self, _: &Service, _: &[Arc<Node>]) -> u64 {
            0
        }
        async fn ensure(&self, _: &Service, _: &[Arc<Node>]) -> Result<Ensured, Failure> {
            Err(Failure::cloud("unused"))
        }
        async fn delete(&self, _: &Service) -> Result<Deleted, Failure> {
            Ok(Deleted::Gone)
        }
        async fn owned(&self) -> Result<Vec<Owned>, Failure> {
            Ok(self.owned.clone())
        }
        async fn delete_owned(&self, o: &Owned) -> Result<(), Failure> {
            self.deleted.lock().unwrap().push(o.id.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn orphans_are_deleted_only_after_the_grace_period() {
        let backend = Owning {
            owned: vec![owned(OwnedKind::LoadBalancer, "lb-gone", Some("shop/gone"))],
            ..Default::default()
        };
        let metrics = Metrics::new();
        let mut settings = Settings {
            orphan_grace: Duration::from_secs(3600),
            ..Settings::default()
        };
        let mut seen = HashMap::new();
        collect_orphans(
            &backend,
            backend.owned.clone(),
            &[],
            &settings,
            &metrics,
            &mut seen,
        )
        .await;
        assert!(
            backend.deleted.lock().unwrap().is_empty(),
            "first sighting only reports"
        );
        assert!(metrics
            .encode()
            .contains("olbc_orphans{kind=\"loadbalancer\"} 1"));
        settings.orphan_grace = Duration::ZERO;
        collect_orphans(
            &backend,
            backend.owned.clone(),
            &[],
            &settings,
            &metrics,
            &mut seen,
        )
        .await;
        assert_eq!(
            *backend.deleted.lock().unwrap(),
            vec!["lb-gone".to_string()]
        );
        // A Service that appears in the meantime protects it.
        let mut seen = HashMap::new();
        collect_orphans(
            &backend,
            backend.owned.clone(),
            &[svc("shop", "gone", "LoadBalancer", &[])],
            &settings,
            &metrics,
            &mut seen,
        )
        .await;
        assert_eq!(backend.deleted.lock().unwrap().len(), 1);
    }
}
