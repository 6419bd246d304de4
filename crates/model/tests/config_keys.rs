//! One test per cloud.conf key that shapes the desired load balancer (SPEC §2.1): its effect,
//! its interplay with the annotation that overrides it, and edge values. Parsing the file is
//! tested with the parser; here the typed values go straight into `desired`.

mod common;

use std::time::Duration;

use common::*;
use model::annotations as a;
use model::config::{CloudConfig, LbMethod};
use model::spec::*;
use model::{desired, CloudFeatures, LoadBalancerSpec};

fn with(c: &CloudConfig, anns: &[(&str, &str)]) -> LoadBalancerSpec {
    desired(&svc_with(anns), &nodes(3), c, &features(), &env()).expect("valid")
}

#[test]
fn create_monitor_and_monitor_parameters() {
    let mut c = config();
    c.load_balancer.create_monitor = true;
    c.load_balancer.monitor_delay = Duration::from_secs(7);
    c.load_balancer.monitor_timeout = Duration::from_millis(4500);
    c.load_balancer.monitor_max_retries = 2;
    c.load_balancer.monitor_max_retries_down = 5;
    let m = with(&c, &[]).listeners[0]
        .pool
        .monitor
        .clone()
        .expect("monitor");
    assert_eq!(
        (m.delay, m.timeout, m.max_retries, m.max_retries_down),
        (7, 4, 2, 5)
    );
    // The annotation overrides both ways.
    assert!(
        with(&c, &[(a::ENABLE_HEALTH_MONITOR, "false")]).listeners[0]
            .pool
            .monitor
            .is_none()
    );
    assert_eq!(
        with(&c, &[(a::HEALTH_MONITOR_DELAY, "9")]).listeners[0]
            .pool
            .monitor
            .as_ref()
            .map(|m| m.delay),
        Some(9)
    );
    // Sub-second values round up to Octavia's minimum of one second; out-of-range retries clamp.
    c.load_balancer.monitor_delay = Duration::from_millis(200);
    c.load_balancer.monitor_timeout = Duration::from_millis(100);
    c.load_balancer.monitor_max_retries = 0;
    c.load_balancer.monitor_max_retries_down = 99;
    let m = with(&c, &[]).listeners[0]
        .pool
        .monitor
        .clone()
        .expect("monitor");
    assert_eq!(
        (m.delay, m.timeout, m.max_retries, m.max_retries_down),
        (1, 1, 1, 10)
    );
}

#[test]
fn lb_method() {
    let mut c = config();
    assert_eq!(
        with(&c, &[]).listeners[0].pool.lb_algorithm,
        LbMethod::RoundRobin
    );
    c.load_balancer.lb_method = LbMethod::SourceIp;
    assert_eq!(
        with(&c, &[]).listeners[0].pool.lb_algorithm,
        LbMethod::SourceIp
    );
    assert_eq!(
        with(&c, &[(a::LB_METHOD, "LEAST_CONNECTIONS")]).listeners[0]
            .pool
            .lb_algorithm,
        LbMethod::LeastConnections
    );
}

#[test]
fn lb_provider() {
    let mut c = config();
    assert_eq!(with(&c, &[]).provider, None);
    c.load_balancer.lb_provider = Some("amphora".into());
    assert_eq!(with(&c, &[]).provider.as_deref(), Some("amphora"));
}

#[test]
fn internal_lb() {
    let mut c = config();
    c.load_balancer.internal_lb = true;
    assert_eq!(with(&c, &[]).floating_ip, FipIntent::None);
    assert!(matches!(
        with(&c, &[(a::INTERNAL, "false")]).floating_ip,
        FipIntent::New(_)
    ));
}

#[test]
fn node_selector() {
    let mut c = config();
    c.load_balancer.node_selector = vec![("pool".into(), Some("lb".into()))];
    let mut ns = nodes(3);
    ns[0].metadata.labels = Some([("pool".to_string(), "lb".to_string())].into());
    let s = desired(&svc_with(&[]), &ns, &c, &features(), &env()).expect("ok");
    assert_eq!(s.listeners[0].pool.members.initial().len(), 1);
    // The annotation replaces the configured selector.
    let s = desired(
        &svc_with(&[(a::NODE_SELECTOR, "kubernetes.io/os")]),
        &ns,
        &c,
        &features(),
        &env(),
    )
    .expect("ok");
    assert_eq!(s.listeners[0].pool.members.initial().len(), 0);
}

#[test]
fn placement_keys_and_precedence() {
    let mut c = config();
    c.load_balancer.placement.subnet_id = Some("conf-subnet".into());
    c.load_balancer.placement.floating_network_id = Some("conf-net".into());
    c.load_balancer.placement.floating_subnet_id = Some("conf-fsub".into());
    c.load_balancer.placement.floating_subnet = Some("pub*".into());
    c.load_balancer.placement.floating_subnet_tags = vec!["t1".into()];
    c.load_balancer.placement.member_subnet_id = Some("conf-msub".into());
    let s = with(&c, &[]);
    assert_eq!(s.vip.subnet_id.as_deref(), Some("conf-subnet"));
    let FipIntent::New(src) = &s.floating_ip else {
        panic!("fip")
    };
    assert_eq!(
        (
            src.network_id.as_str(),
            src.subnet_id.as_deref(),
            src.subnet_name_glob.as_deref(),
            src.subnet_tags.clone()
        ),
        (
            "conf-net",
            Some("conf-fsub"),
            Some("pub*"),
            vec!["t1".to_string()]
        )
    );
    assert_eq!(
        s.listeners[0].pool.members.initial()[0]
            .subnet_id
            .as_deref(),
        Some("conf-msub")
    );
    // network-id alone.
    let mut c = config();
    c.load_balancer.placement.network_id = Some("conf-vipnet".into());
    let s = with(&c, &[]);
    assert_eq!(
        (s.vip.network_id.as_deref(), s.vip.subnet_id.as_deref()),
        (Some("conf-vipnet"), None)
    );
    // Nothing anywhere: a specific Invalid.
    let mut e = env();
    e.node_subnet_id = None;
    e.node_network_id = None;
    let errs =
        desired(&svc_with(&[]), &nodes(3), &config(), &features(), &e).expect_err("no subnet");
    assert_eq!(errs[0].field, "VIP subnet");
}

#[test]
fn flavor_and_availability_zone() {
    let mut c = config();
    c.load_balancer.flavor_id = Some("conf-flavor".into());
    c.load_balancer.availability_zone = Some("az-conf".into());
    let s = with(&c, &[]);
    assert_eq!(
        (s.flavor_id.as_deref(), s.availability_zone.as_deref()),
        (Some("conf-flavor"), Some("az-conf"))
    );
    let s = with(&c, &[(a::AVAILABILITY_ZONE, "az-ann")]);
    assert_eq!(s.availability_zone.as_deref(), Some("az-ann"));
}

#[test]
fn manage_security_groups() {
    let mut c = config();
    assert!(with(&c, &[]).security_group.is_none());
    c.load_balancer.manage_security_groups = true;
    let sg = with(&c, &[]).security_group.expect("sg");
    assert_eq!(sg.name, "lb-sg-kube_service_kubernetes_shop_web");
    assert_eq!(
        sg.port_ids,
        vec!["port-node-1", "port-node-2", "port-node-3"]
    );
    assert_eq!(sg.rules.len(), 1);
    assert_eq!(
        (sg.rules[0].port, sg.rules[0].remote_ip_prefix.as_str()),
        (30080, "0.0.0.0/0")
    );
    // ETP Local also opens the healthCheckNodePort. With ovn (client addresses kept) the
    // source ranges become the remote prefixes.
    let mut svc = svc_with(&[(a::SOURCE_RANGES, "10.0.0.0/8,192.168.0.0/16")]);
    let spec = svc.spec.as_mut().expect("spec");
    spec.external_traffic_policy = Some("Local".into());
    spec.health_check_node_port = Some(31999);
    let ovn = CloudFeatures::octavia(2, 11, Some("ovn"));
    let s = desired(&svc, &nodes(3), &c, &ovn, &env()).expect("ok");
    assert!(
        s.warnings.is_empty(),
        "ranges are enforced by the group: {:?}",
        s.warnings
    );
    let sg = s.security_group.expect("sg");
    let ports: Vec<_> = sg
        .rules
        .iter()
        .map(|r| (r.port, r.remote_ip_prefix.as_str()))
        .collect();
    assert_eq!(ports.len(), 4);
    assert!(ports.contains(&(30080, "10.0.0.0/8")) && ports.contains(&(30080, "192.168.0.0/16")));
    // Behind amphora the nodes see the amphora, not the client: rules admit the LB's subnets,
    // and source ranges that Octavia cannot enforce (< 2.12) are reported, not faked.
    let mut e = env();
    e.lb_source_cidrs = vec!["10.0.0.0/24".parse().expect("cidr")];
    let old = CloudFeatures::octavia(2, 11, Some("amphora"));
    let s = desired(&svc, &nodes(3), &c, &old, &e).expect("ok");
    assert!(s
        .warnings
        .iter()
        .any(|w| w.reason == model::WarningReason::FeatureUnsupported));
    let prefixes: Vec<_> = s
        .security_group
        .expect("sg")
        .rules
        .iter()
        .map(|r| r.remote_ip_prefix.clone())
        .collect();
    assert!(prefixes.iter().all(|p| p == "10.0.0.0/24"), "{prefixes:?}");
}

#[test]
fn cascade_delete() {
    let mut c = config();
    assert!(with(&c, &[]).cascade_delete);
    c.load_balancer.cascade_delete = false;
    assert!(!with(&c, &[]).cascade_delete);
    // A cloud without cascade never gets it, whatever the config says.
    let s = desired(
        &svc_with(&[]),
        &nodes(3),
        &config(),
        &CloudFeatures::neutron_v2(None),
        &env(),
    )
    .expect("ok");
    assert!(!s.cascade_delete);
}

#[test]
fn enable_ingress_hostname_and_suffix() {
    let mut c = config();
    c.load_balancer.enable_ingress_hostname = true;
    // Only with proxy protocol, as in OCCM.
    assert_eq!(with(&c, &[]).status.source, IngressSource::FloatingIp);
    c.load_balancer.ingress_hostname_suffix = "sslip.io".into();
    assert_eq!(
        with(&c, &[(a::PROXY_PROTOCOL, "true")]).status.source,
        IngressSource::AddressHostname {
            suffix: "sslip.io".into(),
            from_fip: true
        }
    );
}

#[test]
fn default_tls_container_ref() {
    let mut c = config();
    c.load_balancer.default_tls_container_ref = Some("conf-ref".into());
    let svc = service("metadata: {name: tls, namespace: a}\nspec:\n  ports: [{port: 443, nodePort: 30443}, {port: 80, nodePort: 30080}]\n");
    let s = desired(&svc, &nodes(3), &c, &features(), &env()).expect("ok");
    // The configured default applies to port 443 only; plain ports stay TCP.
    assert_eq!(s.listeners[0].protocol, ListenerProtocol::TerminatedHttps);
    assert_eq!(
        s.listeners[0].default_tls_container_ref.as_deref(),
        Some("conf-ref")
    );
    assert_eq!(s.listeners[1].protocol, ListenerProtocol::Tcp);
}

#[test]
fn max_shared_lb() {
    let mut c = config();
    assert_eq!(with(&c, &[]).max_shared_lb, 2);
    c.load_balancer.max_shared_lb = 5;
    assert_eq!(with(&c, &[]).max_shared_lb, 5);
}

#[test]
fn address_sort_order() {
    let mut n = nodes(1);
    n[0] = node(&NodeDef {
        name: "node-1".into(),
        addresses: vec!["192.168.5.10".into(), "10.1.0.10".into()],
        external: vec!["172.16.0.10".into()],
        ..NodeDef::default()
    });
    let addr = |c: &CloudConfig| {
        desired(&svc_with(&[]), &n, c, &features(), &env())
            .expect("ok")
            .listeners[0]
            .pool
            .members
            .initial()[0]
            .address
            .to_string()
    };
    let mut c = config();
    assert_eq!(addr(&c), "192.168.5.10", "first InternalIP by default");
    c.networking.address_sort_order = vec!["10.0.0.0/8".parse().expect("cidr")];
    assert_eq!(addr(&c), "10.1.0.10");
    c.networking.address_sort_order = vec![
        "172.16.0.0/12".parse().expect("cidr"),
        "10.0.0.0/8".parse().expect("cidr"),
    ];
    assert_eq!(addr(&c), "172.16.0.10");
}

#[test]
fn ipv6_support_disabled() {
    let mut c = config();
    c.networking.ipv6_support_disabled = true;
    let mut svc = svc_with(&[]);
    svc.spec.as_mut().expect("spec").ip_families = Some(vec!["IPv6".into()]);
    let errs = desired(&svc, &nodes(3), &c, &features(), &env()).expect_err("v6 disabled");
    assert_eq!(errs[0].field, "spec.ipFamilies");
    c.networking.ipv6_support_disabled = false;
    let s = desired(&svc, &nodes(3), &c, &features(), &env()).expect("v6");
    assert!(s.listeners[0]
        .pool
        .members
        .initial()
        .iter()
        .all(|m| m.address.is_ipv6()));
}

#[test]
fn lbaas_v1_limits() {
    let v1 = CloudFeatures::neutron_v1();
    let two = service("metadata: {name: two}\nspec:\n  ports: [{port: 80, nodePort: 30080}, {port: 443, nodePort: 30443}]\n");
    let errs = desired(&two, &nodes(3), &config(), &v1, &env()).expect_err("v1");
    assert!(errs[0].accepted.contains("exactly one TCP port"));
    let udp = service(
        "metadata: {name: udp}\nspec:\n  ports: [{port: 53, protocol: UDP, nodePort: 30053}]\n",
    );
    assert!(desired(&udp, &nodes(3), &config(), &v1, &env()).is_err());
    assert!(desired(&svc_with(&[]), &nodes(3), &config(), &v1, &env()).is_ok());
    assert!(desired(
        &svc_with(&[(a::X_FORWARDED_FOR, "true")]),
        &nodes(3),
        &config(),
        &v1,
        &env()
    )
    .is_err());
}
