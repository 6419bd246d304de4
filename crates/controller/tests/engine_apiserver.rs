//! The engine against a real kube-apiserver (hack/control-plane.sh) with a fake cloud:
//! finalizer, status, condition, annotations, Events, class filtering, cleanup on delete and
//! on type change, member-set driven requeues, invalid and disabled modes; drift-driven resync
//! (only drifted Services get a pass) and the exact queue depth.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_for, ControlPlane};
use controller::engine::{self, Health, Settings};
use controller::{
    CloudPrint, Deleted, Disabled, Ensured, Failure, Ingress, LoadBalancers, Metrics, Published,
    Resynced, Stages,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

#[derive(Default)]
struct Calls {
    ensure: u32,
    delete: u32,
    progressed: bool,
    busy_once: bool,
    deleted_once: bool,
}

#[derive(Default)]
struct Fake {
    calls: Mutex<HashMap<String, Calls>>,
    /// Set: Services annotated `test/follow-up` are Ready with bookkeeping left, and
    /// `after_publish` records whether the apiserver already showed their IP.
    apiserver: Mutex<Option<Client>>,
    follow_ups: Mutex<Vec<(String, bool)>>,
}

fn key(s: &Service) -> String {
    format!(
        "{}/{}",
        s.metadata.namespace.clone().unwrap_or_default(),
        s.metadata.name.clone().unwrap_or_default()
    )
}

fn role(s: &Service) -> Option<String> {
    s.metadata.annotations.as_ref()?.get("test/role").cloned()
}

impl Fake {
    fn ensures(&self, k: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(k)
            .map(|c| c.ensure)
            .unwrap_or(0)
    }
    fn deletes(&self, k: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(k)
            .map(|c| c.delete)
            .unwrap_or(0)
    }
}

impl LoadBalancers for Fake {
    fn member_fingerprint(&self, service: &Service, nodes: &[Arc<Node>]) -> u64 {
        // Members = nodes labelled role=<the Service's test/role annotation>.
        let want = role(service);
        let mut names: Vec<String> = nodes
            .iter()
            .filter(|n| {
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("role"))
                    .cloned()
                    == want
            })
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        names.sort();
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        names.hash(&mut h);
        h.finish()
    }

    async fn ensure(&self, service: &Service, _nodes: &[Arc<Node>]) -> Result<Ensured, Failure> {
        let k = key(service);
        let mut calls = self.calls.lock().unwrap();
        let c = calls.entry(k.clone()).or_default();
        c.ensure += 1;
        let ann = service.metadata.annotations.clone().unwrap_or_default();
        if let Some(v) = ann.get("test/invalid") {
            return Ok(Ensured::Invalid {
                problems: vec![format!("test/invalid: value {v:?} is not accepted")],
            });
        }
        if ann.contains_key("test/quota") {
            return Err(Failure::quota(
                "Quota exceeded for resources: ['floatingip']",
            ));
        }
        if !c.progressed {
            c.progressed = true;
            return Ok(Ensured::Progressed {
                steps: vec!["create_load_balancer".into()],
                created: true,
                notices: vec![],
                stages: Stages::default(),
                woken: false,
            });
        }
        if !c.busy_once {
            c.busy_once = true;
            return Ok(Ensured::Busy {
                status: "PENDING_CREATE".into(),
                stages: Stages::default(),
                woken: false,
            });
        }
        Ok(Ensured::Ready {
            published: Published {
                ingress: vec![Ingress {
                    ip: Some("127.200.0.7".into()),
                    hostname: None,
                    ip_mode: Some("VIP".into()),
                }],
                load_balancer_id: Some(format!(
                    "lb-{}",
                    service.metadata.name.clone().unwrap_or_default()
                )),
                load_balancer_address: Some("127.200.0.7".into()),
            },
            notices: vec![],
            stages: Stages {
                lb_active: true,
                fip_attached: true,
            },
            print: None,
            follow_up: ann.contains_key("test/follow-up")
                && self.apiserver.lock().unwrap().is_some(),
        })
    }

    async fn after_publish(&self, service: &Service) -> Result<Option<CloudPrint>, Failure> {
        let client = self.apiserver.lock().unwrap().clone();
        let Some(client) = client else {
            return Ok(None);
        };
        let api: Api<Service> = Api::namespaced(
            client,
            service.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let now = api
            .get(service.metadata.name.as_deref().unwrap_or_default())
            .await
            .map_err(|e| Failure::cloud(e.to_string()))?;
        let published = now
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .is_some_and(|i| !i.is_empty());
        self.follow_ups
            .lock()
            .unwrap()
            .push((key(service), published));
        Ok(Some(CloudPrint::default()))
    }

    async fn delete(&self, service: &Service) -> Result<Deleted, Failure> {
        let k = key(service);
        let mut calls = self.calls.lock().unwrap();
        let c = calls.entry(k).or_default();
        c.delete += 1;
        c.progressed = false;
        c.busy_once = false;
        if !c.deleted_once {
            c.deleted_once = true;
            return Ok(Deleted::Progressed {
                steps: vec!["delete_load_balancer".into()],
                woken: false,
            });
        }
        c.deleted_once = false;
        Ok(Deleted::Gone)
    }
}

fn lb_service(name: &str, extra: serde_json::Value) -> Service {
    let mut v = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "selector": {"app": name}}
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

async fn node(client: &Client, name: &str, role: &str) {
    let n: Node =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"role": role}}}))
            .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &n)
        .await
        .unwrap();
}

async fn event_reasons(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.clone()).as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

fn condition(s: &Service) -> Option<(String, String, String)> {
    s.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "LoadBalancerReady")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn settings(class: Option<&str>) -> Settings {
    Settings {
        class: class.map(String::from),
        concurrency: 4,
        resync_period: Duration::from_secs(300),
        ..Settings::default()
    }
}

fn spawn_engine<B: LoadBalancers>(
    client: Client,
    backend: Arc<B>,
    s: Settings,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    Arc<Health>,
) {
    let (tx, task, health, _) = spawn_engine_with_metrics(client, backend, s);
    (tx, task, health)
}

fn spawn_engine_with_metrics<B: LoadBalancers>(
    client: Client,
    backend: Arc<B>,
    s: Settings,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    Arc<Health>,
    Arc<Metrics>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let health = Arc::new(Health::default());
    let metrics = Arc::new(Metrics::new());
    let h = health.clone();
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        engine::run(client, backend, s, m, h, async move {
            let _ = rx.await;
        })
        .await
    });
    (tx, task, health, metrics)
}

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_against_a_real_apiserver() {
    let Some(cp) = ControlPlane::start("engine") else {
        return;
    };
    let client = cp.client().await;
    let ns = "e1";
    namespace(&client, ns).await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let fake = Arc::new(Fake::default());
    *fake.apiserver.lock().unwrap() = Some(client.clone());
    let (stop, task, health) = spawn_engine(client.clone(), fake.clone(), settings(None));
    wait_for("caches synced", LIMIT, || {
        let h = health.clone();
        async move { h.ready().then_some(()) }
    })
    .await;

    // --- create: finalizer, status, condition, annotations, Events.
    services
        .create(
            &PostParams::default(),
            &lb_service(
                "web",
                json!({"metadata": {"annotations": {"test/role": "a", "test/follow-up": "1"}}}),
            ),
        )
        .await
        .unwrap();
    let svc = wait_for("external IP", LIMIT, || {
        let api = services.clone();
        async move {
            let s = api.get("web").await.ok()?;
            let ip = s
                .status
                .as_ref()?
                .load_balancer
                .as_ref()?
                .ingress
                .as_ref()?
                .first()?
                .ip
                .clone()?;
            (ip == "127.200.0.7").then_some(s)
        }
    })
    .await;
    assert!(svc
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .contains(&"service.kubernetes.io/load-balancer-cleanup".to_string()));
    let ingress = &svc
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref()
        .unwrap()
        .ingress
        .as_ref()
        .unwrap()[0];
    assert_eq!(ingress.ip_mode.as_deref(), Some("VIP"));
    assert_eq!(condition(&svc).unwrap().0, "True");
    assert_eq!(condition(&svc).unwrap().1, "Ready");
    let ann = svc.metadata.annotations.clone().unwrap();
    assert_eq!(
        ann.get("loadbalancer.openstack.org/load-balancer-id")
            .map(String::as_str),
        Some("lb-web")
    );
    assert_eq!(
        ann.get("loadbalancer.openstack.org/load-balancer-address")
            .map(String::as_str),
        Some("127.200.0.7")
    );
    let reasons = wait_for("Ensured event", LIMIT, || {
        let c = client.clone();
        async move {
            let r = event_reasons(&c, ns, "web").await;
            r.iter()
                .any(|(x, _)| x == "EnsuredLoadBalancer")
                .then_some(r)
        }
    })
    .await;
    assert!(
        reasons.iter().any(|(r, _)| r == "EnsuringLoadBalancer"),
        "{reasons:?}"
    );
    // The bookkeeping ran once, and only after the IP was written.
    assert_eq!(
        *fake.follow_ups.lock().unwrap(),
        vec![("e1/web".to_string(), true)]
    );

    // Our own writes do not cause further cloud passes once converged.
    let settled = fake.ensures("e1/web");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.ensures("e1/web"),
        settled,
        "no cloud pass without a change"
    );

    // --- class filtering: another class is never touched.
    services
        .create(
            &PostParams::default(),
            &lb_service(
                "foreign",
                json!({"spec": {"loadBalancerClass": "example.com/other"}}),
            ),
        )
        .await
        .unwrap();
    // --- member-set driven requeue: a second Service on role b.
    services
        .create(
            &PostParams::default(),
            &lb_service(
                "other",
                json!({"metadata": {"annotations": {"test/role": "b"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("other converged", LIMIT, || {
        let api = services.clone();
        async move {
            api.get("other")
                .await
                .ok()
                .and_then(|s| condition(&s))
                .filter(|c| c.1 == "Ready")
                .map(|_| ())
        }
    })
    .await;
    let (web_before, other_before) = (fake.ensures("e1/web"), fake.ensures("e1/other"));
    node(&client, "node-a1", "a").await;
    wait_for("web re-ensured after its member set changed", LIMIT, || {
        let f = fake.clone();
        async move { (f.ensures("e1/web") > web_before).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fake.ensures("e1/other"),
        other_before,
        "a node change outside its member set does not enqueue it"
    );
    assert_eq!(fake.ensures("e1/foreign"), 0, "another class is ignored");
    let foreign = services.get("foreign").await.unwrap();
    assert!(foreign.metadata.finalizers.is_none());

    // --- invalid configuration: Warning Event naming it and a condition, no finalizer needed.
    services
        .create(
            &PostParams::default(),
            &lb_service(
                "bad",
                json!({"metadata": {"annotations": {"test/invalid": "lots"}}}),
            ),
        )
        .await
        .unwrap();
    let bad = wait_for("invalid condition", LIMIT, || {
        let api = services.clone();
        async move {
            api.get("bad")
                .await
                .ok()
                .and_then(|s| condition(&s))
                .filter(|c| c.1 == "InvalidAnnotation")
        }
    })
    .await;
    assert!(bad.2.contains("test/invalid"), "{bad:?}");
    let ev = event_reasons(&client, ns, "bad").await;
    assert!(
        ev.iter()
            .any(|(r, m)| r == "InvalidLoadBalancerConfiguration" && m.contains("lots")),
        "{ev:?}"
    );

    // --- quota: condition QuotaExceeded carrying OpenStack's message, SyncLoadBalancerFailed.
    services
        .create(
            &PostParams::default(),
            &lb_service(
                "quota",
                json!({"metadata": {"annotations": {"test/quota": "1"}}}),
            ),
        )
        .await
        .unwrap();
    let q = wait_for("quota condition", LIMIT, || {
        let api = services.clone();
        async move {
            api.get("quota")
                .await
                .ok()
                .and_then(|s| condition(&s))
                .filter(|c| c.1 == "QuotaExceeded")
        }
    })
    .await;
    assert!(q.2.contains("Quota exceeded"), "{q:?}");

    // --- type change to ClusterIP: cleanup, status cleared, finalizer gone.
    services
        .patch(
            "other",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .unwrap();
    let other = wait_for("other cleaned up", LIMIT, || {
        let api = services.clone();
        async move {
            let s = api.get("other").await.ok()?;
            (s.metadata.finalizers.clone().unwrap_or_default().is_empty()).then_some(s)
        }
    })
    .await;
    assert!(fake.deletes("e1/other") >= 2, "delete is driven to Gone");
    let ingress = other
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.clone())
        .unwrap_or_default();
    assert!(ingress.is_empty(), "{ingress:?}");
    assert!(condition(&other).is_none());

    // --- delete: cloud cleanup, then the finalizer goes and the Service disappears.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("web gone", LIMIT, || {
        let api = services.clone();
        async move {
            api.get_opt("web")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(fake.deletes("e1/web") >= 2);
    let ev = event_reasons(&client, ns, "web").await;
    assert!(
        ev.iter().any(|(r, _)| r == "DeletingLoadBalancer"),
        "{ev:?}"
    );
    assert!(ev.iter().any(|(r, _)| r == "DeletedLoadBalancer"), "{ev:?}");

    let _ = stop.send(());
    tokio::time::timeout(LIMIT, task)
        .await
        .expect("engine stops")
        .unwrap();

    // --- disabled mode: a second engine that may not touch the cloud.
    let ns2 = "e2";
    namespace(&client, ns2).await;
    let services2: Api<Service> = Api::namespaced(client.clone(), ns2);
    // Clean up what the first phase left so the disabled engine sees only its Services.
    for name in ["bad", "quota"] {
        let _ = services.delete(name, &DeleteParams::default()).await;
    }
    let disabled = Arc::new(Disabled { why: "[LoadBalancer] enabled = false in cloud.conf; set enabled = true to create load balancers".into() });
    let (stop, task, _health) = spawn_engine(client.clone(), disabled, settings(None));
    services2
        .create(&PostParams::default(), &lb_service("off", json!({})))
        .await
        .unwrap();
    let c = wait_for("disabled condition", LIMIT, || {
        let api = services2.clone();
        async move {
            api.get("off")
                .await
                .ok()
                .and_then(|s| condition(&s))
                .filter(|c| c.1 == "Disabled")
        }
    })
    .await;
    assert!(c.2.contains("enabled = true"), "{c:?}");
    let off = services2.get("off").await.unwrap();
    assert!(
        off.metadata.finalizers.is_none(),
        "disabled mode adds no finalizer"
    );
    assert!(off
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_none_or(|i| i.is_empty()));
    let ev = wait_for("disabled event", LIMIT, || {
        let c = client.clone();
        async move {
            let r = event_reasons(&c, ns2, "off").await;
            (!r.is_empty()).then_some(r)
        }
    })
    .await;
    assert_eq!(
        ev.iter()
            .filter(|(r, _)| r == "LoadBalancerDisabled")
            .count(),
        1,
        "{ev:?}"
    );
    // The quota Service of the first phase still holds our finalizer: in disabled mode it is
    // released with a Warning instead of blocking deletion forever.
    wait_for("quota Service released", LIMIT, || {
        let api = services.clone();
        async move {
            api.get_opt("quota")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await;
    let _ = stop.send(());
    tokio::time::timeout(LIMIT, task)
        .await
        .expect("engine stops")
        .unwrap();
}

/// A cloud whose converged Services all carry a print, and whose resync reports as drifted
/// exactly the keys the test lists. `test/busy` Services stay busy forever.
#[derive(Default)]
struct Drifting {
    ensures: Mutex<HashMap<String, u32>>,
    drifted: Mutex<Vec<String>>,
    resyncs: Mutex<Vec<usize>>,
}

impl Drifting {
    fn ensures(&self, k: &str) -> u32 {
        self.ensures.lock().unwrap().get(k).copied().unwrap_or(0)
    }
}

impl LoadBalancers for Drifting {
    fn member_fingerprint(&self, _: &Service, _: &[Arc<Node>]) -> u64 {
        0
    }

    async fn ensure(&self, service: &Service, _: &[Arc<Node>]) -> Result<Ensured, Failure> {
        *self
            .ensures
            .lock()
            .unwrap()
            .entry(key(service))
            .or_default() += 1;
        let ann = service.metadata.annotations.clone().unwrap_or_default();
        if ann.contains_key("test/busy") {
            return Ok(Ensured::Busy {
                status: "PENDING_UPDATE".into(),
                stages: Stages::default(),
                woken: false,
            });
        }
        Ok(Ensured::Ready {
            published: Published {
                ingress: vec![Ingress {
                    ip: Some("127.200.0.9".into()),
                    ..Default::default()
                }],
                load_balancer_id: None,
                load_balancer_address: None,
            },
            notices: vec![],
            stages: Stages::default(),
            print: Some(CloudPrint::default()),
            follow_up: false,
        })
    }

    async fn delete(&self, _: &Service) -> Result<Deleted, Failure> {
        Ok(Deleted::Gone)
    }

    async fn resync(&self, prints: &[(String, CloudPrint)]) -> Result<Resynced, Failure> {
        self.resyncs.lock().unwrap().push(prints.len());
        let drifted = std::mem::take(&mut *self.drifted.lock().unwrap());
        Ok(Resynced {
            drifted: prints
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| drifted.contains(k))
                .collect(),
            owned: Some(vec![]),
        })
    }
}

fn queue_depth(m: &Metrics) -> Option<i64> {
    m.encode()
        .lines()
        .find_map(|l| l.strip_prefix("olbc_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_passes_only_drifted_services_and_queue_depth_is_exact() {
    let Some(cp) = ControlPlane::start("engine-resync") else {
        return;
    };
    let client = cp.client().await;
    let ns = "r1";
    namespace(&client, ns).await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let fake = Arc::new(Drifting::default());
    let s = Settings {
        resync_period: Duration::from_secs(1),
        ..settings(None)
    };
    let (stop, task, health, metrics) = spawn_engine_with_metrics(client.clone(), fake.clone(), s);
    wait_for("caches synced", LIMIT, || {
        let h = health.clone();
        async move { h.ready().then_some(()) }
    })
    .await;
    let names = ["a", "b", "c"];
    for n in names {
        services
            .create(&PostParams::default(), &lb_service(n, json!({})))
            .await
            .unwrap();
    }
    for n in names {
        wait_for(&format!("{n} ready"), LIMIT, || {
            let api = services.clone();
            async move {
                api.get(n)
                    .await
                    .ok()
                    .and_then(|s| condition(&s))
                    .filter(|c| c.1 == "Ready")
                    .map(|_| ())
            }
        })
        .await;
    }
    wait_for("queue empty once converged", LIMIT, || {
        let m = metrics.clone();
        async move { (queue_depth(&m) == Some(0)).then_some(()) }
    })
    .await;

    // Idle resyncs: every converged Service is compared, none gets a pass.
    let before: Vec<u32> = names
        .iter()
        .map(|n| fake.ensures(&format!("r1/{n}")))
        .collect();
    let rounds = fake.resyncs.lock().unwrap().len();
    wait_for("two more resync rounds", LIMIT, || {
        let f = fake.clone();
        async move { (f.resyncs.lock().unwrap().len() >= rounds + 2).then_some(()) }
    })
    .await;
    let after: Vec<u32> = names
        .iter()
        .map(|n| fake.ensures(&format!("r1/{n}")))
        .collect();
    assert_eq!(before, after, "an idle resync costs no per-Service pass");
    assert_eq!(fake.resyncs.lock().unwrap().last().copied(), Some(3));
    assert_eq!(queue_depth(&metrics), Some(0));

    // One drifted Service: exactly it gets a pass.
    fake.drifted.lock().unwrap().push("r1/b".into());
    wait_for("b re-ensured after drift", LIMIT, || {
        let f = fake.clone();
        let want = before[1];
        async move { (f.ensures("r1/b") > want).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.ensures("r1/a"), before[0]);
    assert_eq!(fake.ensures("r1/c"), before[2]);

    // A Service that stays busy is queued (requeued after backoffs); the others are not.
    services
        .create(
            &PostParams::default(),
            &lb_service(
                "busy",
                json!({"metadata": {"annotations": {"test/busy": "1"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("busy Service passed twice", LIMIT, || {
        let f = fake.clone();
        async move { (f.ensures("r1/busy") >= 2).then_some(()) }
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            queue_depth(&metrics),
            Some(1),
            "only the busy Service is queued"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    services
        .delete("busy", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("queue empty again", LIMIT, || {
        let m = metrics.clone();
        async move { (queue_depth(&m) == Some(0)).then_some(()) }
    })
    .await;

    let _ = stop.send(());
    tokio::time::timeout(LIMIT, task)
        .await
        .expect("engine stops")
        .unwrap();
}
