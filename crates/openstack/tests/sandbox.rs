//! The clients against the sandbox started in-process on ephemeral ports, in all three LBaaS
//! modes, and in failure cases driven through the sandbox's admin API (token revocation and
//! expiry, injected 503/429, quota exhausted, LB → ERROR) and over TLS with its generated CA.

use std::time::Duration;

use model::config::{GlobalConfig, LbaasGeneration, MetadataConfig, Secret};
use openstack::lbaas::v1::{V1CreateHealthMonitor, V1CreateMember, V1CreatePool, V1CreateVip};
use openstack::lbaas::{
    CreateHealthMonitor, CreateListener, CreateLoadBalancer, CreateMember, CreatePool,
    LoadBalancer, LoadBalancerApi, UpdateLoadBalancer,
};
use openstack::neutron::CreateFloatingIp;
use openstack::{
    ApiVersion, Error, LbaasV2, ListQuery, Neutron, RetryPolicy, Session, SessionOptions,
};
use sandbox::{LbaasMode, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

async fn start(mode: LbaasMode) -> SandboxHandle {
    start_with(SandboxConfig {
        lbaas: mode,
        provisioning_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
}

async fn start_with(cfg: SandboxConfig) -> SandboxHandle {
    sandbox::start(cfg).await.unwrap()
}

fn global(h: &SandboxHandle) -> GlobalConfig {
    let c = h.admin_credentials();
    GlobalConfig {
        auth_url: Some(h.auth_url()),
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        project_name: Some(c.project_name.clone()),
        user_domain_name: Some(c.user_domain_name.clone()),
        project_domain_name: Some(c.project_domain_name.clone()),
        region: Some(h.region().to_string()),
        ca_file: h.ca_pem_path().map(|p| p.to_string_lossy().into_owned()),
        ..Default::default()
    }
}

fn options() -> SessionOptions {
    SessionOptions {
        rate_limit: None,
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        },
        ..Default::default()
    }
}

async fn session(h: &SandboxHandle) -> Session {
    Session::new(&global(h), &MetadataConfig::default(), options())
        .await
        .unwrap()
}

/// Calls the sandbox's admin API (plain HTTP test hook).
async fn admin(
    h: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let c = reqwest::Client::new();
    let mut r = c.request(method, format!("{}{path}", h.admin_url()));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "admin {path}: {}",
        resp.status()
    );
    resp.json().await.unwrap_or(Value::Null)
}

async fn wait_settled(v2: &LbaasV2, id: &str) -> LoadBalancer {
    for _ in 0..200 {
        let lb = v2.get_loadbalancer(id).await.unwrap();
        if !lb.is_locked() {
            return lb;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("load balancer {id} stayed PENDING_* for 5 s");
}

fn full_lb(subnet: &str, tag: &str) -> CreateLoadBalancer {
    CreateLoadBalancer {
        name: Some("kube_service_k_ns_svc".into()),
        vip_subnet_id: Some(subnet.into()),
        tags: Some(vec![tag.into()]),
        listeners: Some(vec![CreateListener {
            name: Some("listener_0_kube_service_k_ns_svc".into()),
            protocol: "TCP".into(),
            protocol_port: 80,
            default_pool: Some(CreatePool {
                name: Some("pool_0_kube_service_k_ns_svc".into()),
                protocol: "TCP".into(),
                lb_algorithm: "ROUND_ROBIN".into(),
                members: Some(vec![CreateMember {
                    address: "127.100.0.10".into(),
                    protocol_port: 30080,
                    ..Default::default()
                }]),
                healthmonitor: Some(CreateHealthMonitor {
                    monitor_type: "TCP".into(),
                    delay: 5,
                    timeout: 3,
                    max_retries: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

#[tokio::test]
async fn octavia_mode_full_lifecycle() {
    let h = start(LbaasMode::Octavia).await;
    let s = session(&h).await;
    let seed = h.seed().clone();
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    assert_eq!(api.generation(), Some(LbaasGeneration::Octavia));
    let v2 = api.v2().unwrap();
    assert!(v2.max_version().await.unwrap() >= ApiVersion::new(2, 0));
    assert!(!v2.providers().await.unwrap().is_empty());
    v2.flavors().await.unwrap();
    let project = s.token_info().await.unwrap().project.clone().unwrap().id;
    v2.quota(&project).await.unwrap();

    let lookup = ListQuery::new().tags(&["olbc-test"]);
    let lb = v2
        .ensure_loadbalancer(&full_lb(&seed.nodes_subnet_id, "olbc-test"), &lookup)
        .await
        .unwrap();
    // Mutations while PENDING_CREATE are refused with 409 and the cloud's message.
    let locked = v2
        .update_loadbalancer(
            &lb.id,
            &UpdateLoadBalancer {
                description: Some("d".into()),
                ..Default::default()
            },
        )
        .await;
    if let Err(e) = &locked {
        assert!(e.is_conflict(), "{e:?}");
        assert!(!e.message().is_empty());
    }
    let lb = wait_settled(v2, &lb.id).await;
    assert_eq!(lb.provisioning_status, "ACTIVE");
    let again = v2
        .ensure_loadbalancer(&full_lb(&seed.nodes_subnet_id, "olbc-test"), &lookup)
        .await
        .unwrap();
    assert_eq!(again.id, lb.id, "found by its tag, not created twice");
    let tree = v2.status_tree(&lb.id).await.unwrap();
    let pool_id = tree.loadbalancer.listeners[0].pools[0].id.clone();
    assert_eq!(tree.loadbalancer.listeners[0].pools[0].members.len(), 1);

    let by_tag = v2
        .list_loadbalancers(&ListQuery::new().tags(&["olbc-test"]))
        .await
        .unwrap();
    assert_eq!(by_tag.len(), 1);
    assert!(v2
        .list_loadbalancers(&ListQuery::new().tags_any(&["other"]))
        .await
        .unwrap()
        .is_empty());

    v2.replace_members(
        &pool_id,
        &[
            CreateMember {
                address: "127.100.0.11".into(),
                protocol_port: 30080,
                ..Default::default()
            },
            CreateMember {
                address: "127.100.0.12".into(),
                protocol_port: 30080,
                ..Default::default()
            },
        ],
    )
    .await
    .unwrap();
    wait_settled(v2, &lb.id).await;
    let mut addrs: Vec<String> = v2
        .list_members(&pool_id, &ListQuery::new())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.address)
        .collect();
    addrs.sort();
    assert_eq!(addrs, ["127.100.0.11", "127.100.0.12"]);
    v2.stats(&lb.id).await.unwrap();

    // A floating IP on the VIP port, idempotent by description.
    let n = Neutron::new(&s).await.unwrap();
    let desc = "Floating IP for Kubernetes external service ns/svc from cluster k".to_string();
    let req = CreateFloatingIp {
        floating_network_id: seed.public_network_id.clone(),
        port_id: Some(lb.vip_port_id.clone()),
        description: Some(desc.clone()),
        ..Default::default()
    };
    let fip = n
        .ensure_floating_ip(&req, &ListQuery::new().description(desc.clone()))
        .await
        .unwrap();
    let again = n
        .ensure_floating_ip(&req, &ListQuery::new().description(desc))
        .await
        .unwrap();
    assert_eq!(fip.id, again.id);
    assert_eq!(
        n.associate_floating_ip(&fip.id, None)
            .await
            .unwrap()
            .port_id,
        None
    );
    n.delete_floating_ip(&fip.id).await.unwrap();

    v2.delete_loadbalancer(&lb.id, true).await.unwrap();
    let mut gone = false;
    for _ in 0..200 {
        match v2.get_loadbalancer(&lb.id).await {
            Err(e) if e.is_not_found() => {
                gone = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    assert!(gone);
    h.shutdown().await;
}

#[tokio::test]
async fn neutron_lbaas_v2_mode() {
    let h = start(LbaasMode::NeutronV2).await;
    let s = session(&h).await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    assert_eq!(api.generation(), Some(LbaasGeneration::NeutronV2));
    let v2 = api.v2().unwrap();
    let lb = v2
        .create_loadbalancer(&CreateLoadBalancer {
            name: Some("nv2".into()),
            vip_subnet_id: Some(h.seed().nodes_subnet_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_settled(v2, &lb.id).await;
    let listener = v2
        .create_listener(&CreateListener {
            loadbalancer_id: Some(lb.id.clone()),
            protocol: "TCP".into(),
            protocol_port: 80,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_settled(v2, &lb.id).await;
    let pool = v2
        .create_pool(&CreatePool {
            listener_id: Some(listener.id.clone()),
            protocol: "TCP".into(),
            lb_algorithm: "ROUND_ROBIN".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_settled(v2, &lb.id).await;
    let member = v2
        .create_member(
            &pool.id,
            &CreateMember {
                address: "127.100.0.20".into(),
                protocol_port: 30080,
                subnet_id: Some(h.seed().nodes_subnet_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_settled(v2, &lb.id).await;
    let tree = v2.status_tree(&lb.id).await.unwrap();
    assert_eq!(
        tree.loadbalancer.listeners[0].pools[0].members[0].id,
        member.id
    );
    assert!(matches!(
        v2.delete_loadbalancer(&lb.id, true).await,
        Err(Error::Unsupported { .. })
    ));
    // Bottom-up delete, waiting for the lock between steps.
    v2.delete_member(&pool.id, &member.id).await.unwrap();
    wait_settled(v2, &lb.id).await;
    v2.delete_pool(&pool.id).await.unwrap();
    wait_settled(v2, &lb.id).await;
    v2.delete_listener(&listener.id).await.unwrap();
    wait_settled(v2, &lb.id).await;
    v2.delete_loadbalancer(&lb.id, false).await.unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn neutron_lbaas_v1_mode() {
    let h = start(LbaasMode::NeutronV1).await;
    let s = session(&h).await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    assert_eq!(api.generation(), Some(LbaasGeneration::NeutronV1));
    let v1 = api.v1().unwrap();
    let subnet = h.seed().nodes_subnet_id.clone();
    let pool = v1
        .create_pool(&V1CreatePool {
            name: "p".into(),
            subnet_id: subnet.clone(),
            protocol: "TCP".into(),
            lb_method: "ROUND_ROBIN".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let member = v1
        .create_member(&V1CreateMember {
            pool_id: pool.id.clone(),
            address: "127.100.0.30".into(),
            protocol_port: 30080,
            ..Default::default()
        })
        .await
        .unwrap();
    let hm = v1
        .create_health_monitor(&V1CreateHealthMonitor {
            monitor_type: "TCP".into(),
            delay: 5,
            timeout: 3,
            max_retries: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    v1.associate_health_monitor(&pool.id, &hm.id).await.unwrap();
    let vip = v1
        .create_vip(&V1CreateVip {
            name: "v".into(),
            subnet_id: subnet,
            protocol: "TCP".into(),
            protocol_port: 80,
            pool_id: pool.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // v1 objects are PENDING_CREATE for a moment, and refuse deletion until ACTIVE.
    for _ in 0..200 {
        if v1.get_vip(&vip.id).await.unwrap().status == "ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = v1.get_pool(&pool.id).await.unwrap();
    assert!(got.health_monitors.contains(&hm.id), "{got:?}");
    assert_eq!(
        v1.list_members(&ListQuery::new().filter("pool_id", pool.id.clone()))
            .await
            .unwrap()
            .len(),
        1
    );
    v1.delete_vip(&vip.id).await.unwrap();
    for _ in 0..200 {
        match v1.get_vip(&vip.id).await {
            Err(e) if e.is_not_found() => break,
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    v1.disassociate_health_monitor(&pool.id, &hm.id)
        .await
        .unwrap();
    v1.delete_health_monitor(&hm.id).await.unwrap();
    v1.delete_member(&member.id).await.unwrap();
    v1.delete_pool(&pool.id).await.unwrap();
    let mut gone = false;
    for _ in 0..200 {
        match v1.get_pool(&pool.id).await {
            Err(e) if e.is_not_found() => {
                gone = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    assert!(gone, "pool deleted");
    h.shutdown().await;
}

#[tokio::test]
async fn application_credential_trust_and_wrong_password() {
    let h = start(LbaasMode::Octavia).await;
    let (ac_id, ac_secret) = h.application_credential();
    let g = GlobalConfig {
        auth_url: Some(h.auth_url()),
        application_credential_id: Some(ac_id.to_string()),
        application_credential_secret: Some(ac_secret.clone()),
        ..Default::default()
    };
    let s = Session::new(&g, &MetadataConfig::default(), options())
        .await
        .unwrap();
    Neutron::new(&s)
        .await
        .unwrap()
        .list_networks(&ListQuery::new())
        .await
        .unwrap();

    let (trust_id, trustee) = h.trust();
    let g = GlobalConfig {
        auth_url: Some(h.auth_url()),
        username: Some(trustee.username.clone()),
        user_domain_name: Some(trustee.user_domain_name.clone()),
        password: Some(trustee.password.clone()),
        trust_id: Some(trust_id.to_string()),
        ..Default::default()
    };
    let s = Session::new(&g, &MetadataConfig::default(), options())
        .await
        .unwrap();
    assert!(
        s.token_info().await.unwrap().project.is_some(),
        "trust-scoped token has the trustor's project"
    );

    let mut g = global(&h);
    g.password = Some(Secret::new("wrong"));
    let e = Session::new(&g, &MetadataConfig::default(), options())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn token_revoked_or_expired_mid_sequence_reauthenticates() {
    let h = start(LbaasMode::Octavia).await;
    let s = session(&h).await;
    let n = Neutron::new(&s).await.unwrap();
    n.list_networks(&ListQuery::new()).await.unwrap();
    assert_eq!(s.token_info().await.unwrap().generation, 1);
    admin(&h, reqwest::Method::POST, "/tokens/revoke", Some(json!({}))).await;
    n.list_networks(&ListQuery::new()).await.unwrap();
    assert_eq!(s.token_info().await.unwrap().generation, 2);
    admin(&h, reqwest::Method::POST, "/tokens/expire", None).await;
    n.list_subnets(&ListQuery::new()).await.unwrap();
    assert_eq!(s.token_info().await.unwrap().generation, 3);
    assert_eq!(s.metrics().retried_count("network", "GET", "reauth"), 2);
    h.shutdown().await;
}

/// Adds a fault rule, waits until the sandbox logged the first failing request, then clears the
/// rule: the client's retry (after its backoff) meets a healthy server. Bounded in count.
async fn fail_first_then_heal(
    h: &SandboxHandle,
    status: u16,
    path: &str,
    call: impl std::future::Future<Output = ()>,
) {
    admin(h, reqwest::Method::DELETE, "/requests", None).await;
    admin(
        h,
        reqwest::Method::POST,
        "/faults/rules",
        Some(json!({"service": "network", "method": "GET", "path": path, "status": status})),
    )
    .await;
    let healer = async {
        for _ in 0..500 {
            let log = admin(h, reqwest::Method::GET, "/requests?service=network", None).await;
            let seen = log["requests"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .any(|e| e["status"].as_u64() == Some(u64::from(status)))
                })
                .unwrap_or(false);
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        admin(h, reqwest::Method::DELETE, "/faults", None).await;
    };
    futures::join!(call, healer);
}

#[tokio::test]
async fn injected_503_and_429_then_success() {
    let h = start(LbaasMode::Octavia).await;
    let mut o = options();
    // Backoff long enough that the healer (polling every 5 ms) always clears the rule first.
    o.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(800),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(5),
    };
    let s = Session::new(&global(&h), &MetadataConfig::default(), o)
        .await
        .unwrap();
    let n = Neutron::new(&s).await.unwrap();
    fail_first_then_heal(&h, 503, "^/v2.0/networks$", async {
        n.list_networks(&ListQuery::new()).await.unwrap();
    })
    .await;
    assert!(s.metrics().retried_count("network", "GET", "503") >= 1);
    fail_first_then_heal(&h, 429, "^/v2.0/subnets$", async {
        n.list_subnets(&ListQuery::new()).await.unwrap();
    })
    .await;
    assert!(s.metrics().retried_count("network", "GET", "429") >= 1);

    // A POST meeting a 503 is not repeated.
    admin(&h, reqwest::Method::POST, "/faults/rules", Some(json!({"service": "network", "method": "POST", "path": "^/v2.0/floatingips$", "status": 503}))).await;
    let e = n
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: h.seed().public_network_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Server { status: 503, .. }), "{e:?}");
    assert_eq!(s.metrics().request_count("network", "POST", "503"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn quota_exhausted_and_missing_network() {
    let h = start(LbaasMode::Octavia).await;
    let s = session(&h).await;
    let n = Neutron::new(&s).await.unwrap();
    admin(
        &h,
        reqwest::Method::PUT,
        "/quotas",
        Some(json!({"project": "admin", "resource": "floatingip", "limit": 0})),
    )
    .await;
    let e = n
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: h.seed().public_network_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.is_quota(), "{e:?}");
    let project = s.token_info().await.unwrap().project.clone().unwrap().id;
    let q = n.quota(&project).await.unwrap();
    assert_eq!(q.get("floatingip").map(|u| u.limit), Some(0));

    admin(
        &h,
        reqwest::Method::PUT,
        "/quotas",
        Some(json!({"project": "admin", "resource": "load_balancer", "limit": 0})),
    )
    .await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    let e = api
        .v2()
        .unwrap()
        .create_loadbalancer(&full_lb(&h.seed().nodes_subnet_id, "q"))
        .await
        .unwrap_err();
    assert!(e.is_quota(), "{e:?}");

    let e = n
        .create_floating_ip(&CreateFloatingIp {
            floating_network_id: "00000000-0000-0000-0000-000000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.is_not_found() || matches!(e, Error::BadRequest { .. } | Error::QuotaExceeded { .. }),
        "{e:?}"
    );
    assert!(n
        .get_network("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err()
        .is_not_found());
    h.shutdown().await;
}

#[tokio::test]
async fn tls_with_the_sandbox_ca_and_with_a_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(SandboxConfig {
        tls: true,
        tls_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    assert!(h.auth_url().starts_with("https://"));
    let s = session(&h).await;
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    assert_eq!(api.label(), "Octavia");

    let other_dir = tempfile::tempdir().unwrap();
    let other = start_with(SandboxConfig {
        tls: true,
        tls_dir: Some(other_dir.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let mut g = global(&h);
    g.ca_file = other
        .ca_pem_path()
        .map(|p| p.to_string_lossy().into_owned());
    let e = Session::new(&g, &MetadataConfig::default(), options())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    h.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn endpoint_down_and_no_load_balancer_service() {
    let h = start(LbaasMode::Octavia).await;
    let g = global(&h);
    h.shutdown().await;
    let e = Session::new(&g, &MetadataConfig::default(), options())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");

    // Neutron LBaaS v2 mode has no load-balancer catalog entry: forcing Octavia fails clearly.
    let h = start(LbaasMode::NeutronV2).await;
    let s = session(&h).await;
    assert!(!s.has_service("load-balancer").await.unwrap());
    let e = LoadBalancerApi::detect(&s, Some(LbaasGeneration::Octavia))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::EndpointNotFound { .. }), "{e:?}");
    h.shutdown().await;
}
