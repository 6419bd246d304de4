//! Against the REAL Keystone/Neutron/Octavia of /work/shared/openstack-rig. Runs only with
//! `OLBC_RIG=1` (the rig is not started in CI): `source /tmp/osrig/openrc` is not needed, the
//! rig's fixed loopback ports and admin/secret are the defaults (OS_* variables override).

use std::time::Duration;

use model::config::{GlobalConfig, MetadataConfig, Secret};
use openstack::lbaas::{
    CreateHealthMonitor, CreateListener, CreateLoadBalancer, CreateMember, CreatePool,
    LoadBalancerApi, UpdateLoadBalancer,
};
use openstack::neutron::{
    CreateFloatingIp, CreateSecurityGroup, CreateSecurityGroupRule, TagResource,
    UpdateSecurityGroup,
};
use openstack::{ApiVersion, Error, ListQuery, Neutron, Session, SessionOptions};

fn enabled() -> bool {
    let on = std::env::var("OLBC_RIG").map(|v| v == "1").unwrap_or(false);
    if !on {
        eprintln!("skipped: set OLBC_RIG=1 with /work/shared/openstack-rig running");
    }
    on
}

fn env(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

fn global() -> GlobalConfig {
    GlobalConfig {
        auth_url: Some(env("OS_AUTH_URL", "http://127.0.0.1:5000/v3")),
        username: Some(env("OS_USERNAME", "admin")),
        password: Some(Secret::new(env("OS_PASSWORD", "secret"))),
        project_name: Some(env("OS_PROJECT_NAME", "admin")),
        user_domain_name: Some(env("OS_USER_DOMAIN_NAME", "Default")),
        project_domain_name: Some(env("OS_PROJECT_DOMAIN_NAME", "Default")),
        region: Some(env("OS_REGION_NAME", "RegionOne")),
        ..Default::default()
    }
}

async fn wait_active(v2: &openstack::LbaasV2, id: &str) -> openstack::lbaas::LoadBalancer {
    for _ in 0..120 {
        let lb = v2.get_loadbalancer(id).await.unwrap();
        if !lb.is_locked() {
            return lb;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("load balancer {id} did not leave PENDING_* in 60 s");
}

#[tokio::test]
async fn rig_wrong_password() {
    if !enabled() {
        return;
    }
    let mut g = global();
    g.password = Some(Secret::new("not-the-password"));
    let e = Session::new(&g, &MetadataConfig::default(), SessionOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    println!("real Keystone wrong password: {e}");
}

#[tokio::test]
async fn rig_end_to_end() {
    if !enabled() {
        return;
    }
    let s = Session::new(
        &global(),
        &MetadataConfig::default(),
        SessionOptions::default(),
    )
    .await
    .unwrap();
    let info = s.token_info().await.unwrap();
    let project = info.project.clone().unwrap().id;
    let n = Neutron::new(&s).await.unwrap();

    let public = n
        .list_networks(&ListQuery::new().router_external(true).name("public"))
        .await
        .unwrap();
    assert_eq!(public.len(), 1, "{public:?}");
    let public = &public[0];
    let private = n
        .list_networks(&ListQuery::new().name("private"))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let subnet = n.get_subnet(&private.subnets[0]).await.unwrap();
    assert_eq!(subnet.cidr, "10.0.0.0/24");
    assert!(n
        .list_extensions()
        .await
        .unwrap()
        .iter()
        .any(|e| e.alias == "standard-attr-tag"));
    let q = n.quota(&project).await.unwrap();
    println!("neutron quota floatingip: {:?}", q.get("floatingip"));
    assert!(
        q.get("floatingip").and_then(|u| u.used).is_some(),
        "details give usage"
    );
    let avail = n.network_ip_availability(&public.id).await.unwrap();
    assert!(avail.total_ips > avail.used_ips);

    // Security group with If-Match and tags.
    let sg = n
        .create_security_group(&CreateSecurityGroup {
            name: "olbc-rig-test".into(),
            description: Some("test".into()),
        })
        .await
        .unwrap();
    let rule = n
        .create_security_group_rule(&CreateSecurityGroupRule {
            security_group_id: sg.id.clone(),
            direction: "ingress".into(),
            ethertype: "IPv4".into(),
            protocol: Some("tcp".into()),
            port_range_min: Some(30080),
            port_range_max: Some(30080),
            remote_ip_prefix: Some("0.0.0.0/0".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let sg = n.get_security_group(&sg.id).await.unwrap();
    let rev = sg.revision_number.unwrap();
    let stale = n
        .update_security_group(
            &sg.id,
            &UpdateSecurityGroup {
                description: Some("x".into()),
                ..Default::default()
            },
            Some(rev + 100),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, Error::PreconditionFailed { .. }),
        "{stale:?}"
    );
    println!("real Neutron stale If-Match: {stale}");
    n.update_security_group(
        &sg.id,
        &UpdateSecurityGroup {
            description: Some("y".into()),
            ..Default::default()
        },
        Some(rev),
    )
    .await
    .unwrap();
    let tags = n
        .replace_tags(
            TagResource::SecurityGroups,
            &sg.id,
            &["olbc".into(), "cluster=x".into()],
        )
        .await
        .unwrap();
    assert_eq!(tags.len(), 2);
    n.add_tag(TagResource::SecurityGroups, &sg.id, "extra tag")
        .await
        .unwrap();
    assert!(n
        .get_tags(TagResource::SecurityGroups, &sg.id)
        .await
        .unwrap()
        .contains(&"extra tag".to_string()));
    let by_tag = n
        .list_security_groups(&ListQuery::new().tags(&["olbc", "cluster=x"]))
        .await
        .unwrap();
    assert_eq!(by_tag.len(), 1);
    n.delete_security_group_rule(&rule.id).await.unwrap();
    n.delete_security_group(&sg.id).await.unwrap();
    assert!(n
        .delete_security_group(&sg.id)
        .await
        .unwrap_err()
        .is_not_found());

    // Octavia.
    let api = LoadBalancerApi::detect(&s, None).await.unwrap();
    assert_eq!(api.label(), "Octavia");
    let v2 = api.v2().unwrap();
    let version = v2.max_version().await.unwrap();
    println!("octavia max version {version}");
    assert!(version >= ApiVersion::new(2, 27));
    let providers = v2.providers().await.unwrap();
    assert!(providers.iter().any(|p| p.name == "amphora"));
    v2.flavors().await.unwrap();
    v2.availability_zones().await.unwrap();
    println!("octavia quota: {:?}", v2.quota(&project).await.unwrap());

    let tag = format!("olbc-rig-{}", std::process::id());
    let req = CreateLoadBalancer {
        name: Some("olbc-rig-lb".into()),
        vip_subnet_id: Some(subnet.id.clone()),
        tags: Some(vec![tag.clone()]),
        listeners: Some(vec![CreateListener {
            name: Some("listener_0".into()),
            protocol: "TCP".into(),
            protocol_port: 80,
            allowed_cidrs: Some(vec!["10.0.0.0/8".into()]),
            default_pool: Some(CreatePool {
                name: Some("pool_0".into()),
                protocol: "TCP".into(),
                lb_algorithm: "ROUND_ROBIN".into(),
                members: Some(vec![CreateMember {
                    address: "10.0.0.11".into(),
                    protocol_port: 30080,
                    subnet_id: Some(subnet.id.clone()),
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
    };
    let lb = v2.create_loadbalancer(&req).await.unwrap();
    assert_eq!(lb.provisioning_status, "PENDING_CREATE");
    // Mutating while PENDING_CREATE: the real 409 with Octavia's message.
    let locked = v2
        .update_loadbalancer(
            &lb.id,
            &UpdateLoadBalancer {
                description: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(locked.is_conflict(), "{locked:?}");
    println!("real Octavia 409: {locked}");
    let lb = wait_active(v2, &lb.id).await;
    assert_eq!(lb.provisioning_status, "ACTIVE");
    let tree = v2.status_tree(&lb.id).await.unwrap();
    assert_eq!(tree.loadbalancer.listeners.len(), 1);
    assert_eq!(tree.loadbalancer.listeners[0].pools[0].members.len(), 1);
    let found = v2
        .list_loadbalancers(&ListQuery::new().tags(&[tag.as_str()]))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let none = v2
        .list_loadbalancers(&ListQuery::new().tags_any(&["no-such-tag-olbc"]))
        .await
        .unwrap();
    assert!(none.is_empty());
    let pool_id = tree.loadbalancer.listeners[0].pools[0].id.clone();
    v2.replace_members(
        &pool_id,
        &[
            CreateMember {
                address: "10.0.0.12".into(),
                protocol_port: 30080,
                subnet_id: Some(subnet.id.clone()),
                ..Default::default()
            },
            CreateMember {
                address: "10.0.0.13".into(),
                protocol_port: 30080,
                subnet_id: Some(subnet.id.clone()),
                ..Default::default()
            },
        ],
    )
    .await
    .unwrap();
    wait_active(v2, &lb.id).await;
    let members = v2.list_members(&pool_id, &ListQuery::new()).await.unwrap();
    let mut addrs: Vec<_> = members.iter().map(|m| m.address.clone()).collect();
    addrs.sort();
    assert_eq!(addrs, ["10.0.0.12", "10.0.0.13"]);
    println!("stats: {:?}", v2.stats(&lb.id).await.unwrap());

    // Floating IP on the VIP port, made idempotent by a description lookup.
    let desc = format!("Floating IP for Kubernetes external service rig/{tag} from cluster olbc");
    let fip_req = CreateFloatingIp {
        floating_network_id: public.id.clone(),
        port_id: Some(lb.vip_port_id.clone()),
        description: Some(desc.clone()),
        ..Default::default()
    };
    let lookup = ListQuery::new().description(desc.clone());
    let fip = n.ensure_floating_ip(&fip_req, &lookup).await.unwrap();
    assert_eq!(fip.port_id.as_deref(), Some(lb.vip_port_id.as_str()));
    let again = n.ensure_floating_ip(&fip_req, &lookup).await.unwrap();
    assert_eq!(again.id, fip.id, "found, not created twice");
    let detached = n.associate_floating_ip(&fip.id, None).await.unwrap();
    assert_eq!(detached.port_id, None);
    n.associate_floating_ip(&fip.id, Some(&lb.vip_port_id))
        .await
        .unwrap();
    n.delete_floating_ip(&fip.id).await.unwrap();

    v2.delete_loadbalancer(&lb.id, true).await.unwrap();
    let mut gone = false;
    for _ in 0..120 {
        match v2.get_loadbalancer(&lb.id).await {
            Err(e) if e.is_not_found() => {
                gone = true;
                break;
            }
            Ok(l) if l.provisioning_status == "DELETED" => {
                gone = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    assert!(gone, "cascade delete finished");
    println!(
        "metrics: octavia GET 200 = {}",
        s.metrics().request_count("load-balancer", "GET", "200")
    );
}
