//! One test per Service annotation (SPEC §3): a valid value, an invalid one (a specific
//! `Invalid` naming the annotation, the value and the accepted forms) and an edge value.

mod common;

use common::*;
use model::annotations as a;
use model::config::LbMethod;
use model::spec::*;
use model::{InvalidReason, LoadBalancerSpec};

fn ok(anns: &[(&str, &str)]) -> LoadBalancerSpec {
    want(&svc_with(anns)).unwrap_or_else(|e| panic!("expected valid, got {e:?}"))
}

/// Asserts `anns` is rejected with an Invalid on `field` that echoes `value`.
fn bad(anns: &[(&str, &str)], field: &str, value: &str) {
    let errs = want(&svc_with(anns)).expect_err("expected Invalid");
    let e = errs
        .iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no Invalid for {field}: {errs:?}"));
    assert_eq!(e.value, value);
    assert!(!e.accepted.is_empty());
    let text = e.to_string();
    assert!(text.contains(field) && text.contains(value), "{text}");
}

fn l0(s: &LoadBalancerSpec) -> &ListenerSpec {
    &s.listeners[0]
}

const UUID: &str = "6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f60";

#[test]
fn internal_load_balancer() {
    assert_eq!(ok(&[(a::INTERNAL, "true")]).floating_ip, FipIntent::None);
    assert_eq!(
        ok(&[(a::INTERNAL, "true")]).status.source,
        IngressSource::Vip
    );
    assert!(matches!(
        ok(&[(a::INTERNAL, "false")]).floating_ip,
        FipIntent::New(_)
    ));
    // Go's ParseBool spellings are accepted, like OCCM.
    assert_eq!(ok(&[(a::INTERNAL, "1")]).floating_ip, FipIntent::None);
    assert_eq!(ok(&[(a::INTERNAL, " TRUE ")]).floating_ip, FipIntent::None);
    bad(&[(a::INTERNAL, "yes")], a::INTERNAL, "yes");
    bad(&[(a::INTERNAL, "")], a::INTERNAL, "");
}

#[test]
fn floating_network_and_subnets() {
    let s = ok(&[
        (a::FLOATING_NETWORK_ID, UUID),
        (a::FLOATING_SUBNET_ID, "1a1a1a1a1a1a4a1a8a1a1a1a1a1a1a1a"),
        (a::FLOATING_SUBNET, "public-*"),
        (a::FLOATING_SUBNET_TAGS, "ipv4, public"),
    ]);
    let FipIntent::New(src) = s.floating_ip else {
        panic!("new FIP expected")
    };
    assert_eq!(src.network_id, UUID);
    assert_eq!(
        src.subnet_id.as_deref(),
        Some("1a1a1a1a1a1a4a1a8a1a1a1a1a1a1a1a")
    );
    assert_eq!(src.subnet_name_glob.as_deref(), Some("public-*"));
    assert_eq!(src.subnet_tags, vec!["ipv4", "public"]);
    bad(
        &[(a::FLOATING_NETWORK_ID, "public")],
        a::FLOATING_NETWORK_ID,
        "public",
    );
    bad(
        &[(a::FLOATING_SUBNET_ID, "6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f6")],
        a::FLOATING_SUBNET_ID,
        "6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f6",
    );
    bad(
        &[(a::FLOATING_SUBNET, "[unclosed")],
        a::FLOATING_SUBNET,
        "[unclosed",
    );
    bad(
        &[(a::FLOATING_SUBNET_TAGS, "a,,b")],
        a::FLOATING_SUBNET_TAGS,
        "a,,b",
    );
}

#[test]
fn floating_network_missing_everywhere_is_invalid() {
    let mut e = env();
    e.discovered_floating_network_id = None;
    let errs = model::desired(&svc_with(&[]), &nodes(3), &config(), &features(), &e)
        .expect_err("no network");
    assert_eq!(errs[0].reason, InvalidReason::Missing);
    assert!(errs[0].to_string().contains("floating-network-id"));
    // ... but an internal Service needs none.
    assert!(model::desired(
        &svc_with(&[(a::INTERNAL, "true")]),
        &nodes(3),
        &config(),
        &features(),
        &e
    )
    .is_ok());
}

#[test]
fn class() {
    let mut c = config();
    c.classes.push(model::config::LoadBalancerClass {
        name: "dmz".into(),
        placement: model::config::Placement {
            floating_network_id: Some("dmz-net".into()),
            subnet_id: Some("dmz-subnet".into()),
            ..Default::default()
        },
    });
    let s = model::desired(
        &svc_with(&[(a::CLASS, "DMZ")]),
        &nodes(3),
        &c,
        &features(),
        &env(),
    )
    .expect("class");
    assert_eq!(s.vip.subnet_id.as_deref(), Some("dmz-subnet"));
    assert!(matches!(&s.floating_ip, FipIntent::New(src) if src.network_id == "dmz-net"));
    // The annotation still wins over the class.
    let s = model::desired(
        &svc_with(&[(a::CLASS, "dmz"), (a::SUBNET_ID, UUID)]),
        &nodes(3),
        &c,
        &features(),
        &env(),
    )
    .expect("class");
    assert_eq!(s.vip.subnet_id.as_deref(), Some(UUID));
    let errs = model::desired(
        &svc_with(&[(a::CLASS, "web")]),
        &nodes(3),
        &c,
        &features(),
        &env(),
    )
    .expect_err("unknown");
    assert!(errs[0].accepted.contains("dmz"));
    bad(&[(a::CLASS, "any")], a::CLASS, "any");
}

#[test]
fn vip_placement() {
    let s = ok(&[(a::SUBNET_ID, UUID)]);
    assert_eq!(s.vip.subnet_id.as_deref(), Some(UUID));
    assert_eq!(
        s.vip.network_id, None,
        "an explicit subnet does not inherit the nodes' network"
    );
    let s = ok(&[(a::NETWORK_ID, UUID)]);
    assert_eq!(
        (s.vip.network_id.as_deref(), s.vip.subnet_id.as_deref()),
        (Some(UUID), None)
    );
    // port-id beats subnet and network.
    let s = ok(&[
        (a::PORT_ID, UUID),
        (a::SUBNET_ID, "1a1a1a1a1a1a4a1a8a1a1a1a1a1a1a1a"),
    ]);
    assert_eq!(
        (s.vip.port_id.as_deref(), s.vip.subnet_id.as_deref()),
        (Some(UUID), None)
    );
    // Nothing configured: the nodes' subnet.
    assert_eq!(ok(&[]).vip.subnet_id.as_deref(), Some(NODE_SUBNET));
    bad(&[(a::SUBNET_ID, "subnet-a")], a::SUBNET_ID, "subnet-a");
    bad(&[(a::NETWORK_ID, "net")], a::NETWORK_ID, "net");
    bad(
        &[(a::PORT_ID, "6f0c5a8e_3d4b_4b8e_9a55_1b2c3d4e5f60")],
        a::PORT_ID,
        "6f0c5a8e_3d4b_4b8e_9a55_1b2c3d4e5f60",
    );
}

#[test]
fn member_subnet_id() {
    let s = ok(&[(a::MEMBER_SUBNET_ID, UUID)]);
    assert!(s.listeners[0]
        .pool
        .members
        .initial()
        .iter()
        .all(|m| m.subnet_id.as_deref() == Some(UUID)));
    bad(&[(a::MEMBER_SUBNET_ID, "x")], a::MEMBER_SUBNET_ID, "x");
}

#[test]
fn keep_floatingip() {
    assert!(ok(&[(a::KEEP_FLOATINGIP, "true")]).keep_floating_ip);
    assert!(!ok(&[(a::KEEP_FLOATINGIP, "F")]).keep_floating_ip);
    assert!(!ok(&[]).keep_floating_ip);
    bad(&[(a::KEEP_FLOATINGIP, "keep")], a::KEEP_FLOATINGIP, "keep");
}

#[test]
fn connection_limit() {
    assert_eq!(
        l0(&ok(&[(a::CONNECTION_LIMIT, "1000")])).connection_limit,
        1000
    );
    assert_eq!(l0(&ok(&[(a::CONNECTION_LIMIT, "-1")])).connection_limit, -1);
    assert_eq!(l0(&ok(&[])).connection_limit, -1);
    assert_eq!(
        l0(&ok(&[(a::CONNECTION_LIMIT, "2147483647")])).connection_limit,
        2147483647
    );
    bad(&[(a::CONNECTION_LIMIT, "-2")], a::CONNECTION_LIMIT, "-2");
    bad(
        &[(a::CONNECTION_LIMIT, "2147483648")],
        a::CONNECTION_LIMIT,
        "2147483648",
    );
    bad(&[(a::CONNECTION_LIMIT, "1k")], a::CONNECTION_LIMIT, "1k");
}

#[test]
fn lb_method() {
    for (v, m) in [
        ("ROUND_ROBIN", LbMethod::RoundRobin),
        ("LEAST_CONNECTIONS", LbMethod::LeastConnections),
        ("SOURCE_IP", LbMethod::SourceIp),
    ] {
        assert_eq!(l0(&ok(&[(a::LB_METHOD, v)])).pool.lb_algorithm, m);
    }
    bad(&[(a::LB_METHOD, "RANDOM")], a::LB_METHOD, "RANDOM");
    // Parsed case-insensitively; a provider other than amphora may balance by it.
    let other = model::CloudFeatures::octavia(2, 27, Some("vendorx"));
    let s = model::desired(
        &svc_with(&[(a::LB_METHOD, "source_ip_port")]),
        &nodes(3),
        &config(),
        &other,
        &env(),
    )
    .expect("SOURCE_IP_PORT on a provider that takes it");
    assert_eq!(l0(&s).pool.lb_algorithm, LbMethod::SourceIpPort);
}

/// The amphora driver answers every pool create/update with SOURCE_IP_PORT with a 501 (and
/// silently balances round robin after a fully-populated create): refused before anything
/// is created, naming the annotation or the cloud.conf key, the provider and the fix.
#[test]
fn lb_method_source_ip_port_on_amphora() {
    for provider in [Some("amphora"), Some("octavia"), None] {
        let amphora = model::CloudFeatures::octavia(2, 27, provider);
        let errs = model::desired(
            &svc_with(&[(a::LB_METHOD, "SOURCE_IP_PORT")]),
            &nodes(3),
            &config(),
            &amphora,
            &env(),
        )
        .expect_err("amphora refuses SOURCE_IP_PORT");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, a::LB_METHOD);
        assert_eq!(errs[0].reason, InvalidReason::Unsupported);
        let text = errs[0].to_string();
        let name = provider.unwrap_or("amphora");
        assert!(
            text.contains("SOURCE_IP_PORT")
                && text.contains(&format!("the {name} provider refuses"))
                && text.contains("ROUND_ROBIN"),
            "{text}"
        );
    }
    // The cloud.conf default: the key is named, and an annotation can override it.
    let mut conf = config();
    conf.load_balancer.lb_method = LbMethod::SourceIpPort;
    let errs = model::desired(&svc_with(&[]), &nodes(3), &conf, &features(), &env())
        .expect_err("cloud.conf default refused");
    assert_eq!(errs[0].field, "[LoadBalancer] lb-method");
    assert!(errs[0].accepted.contains(a::LB_METHOD), "{errs:?}");
    let s = model::desired(
        &svc_with(&[(a::LB_METHOD, "ROUND_ROBIN")]),
        &nodes(3),
        &conf,
        &features(),
        &env(),
    )
    .expect("the annotation overrides the refused default");
    assert_eq!(l0(&s).pool.lb_algorithm, LbMethod::RoundRobin);
    // OVN balances by nothing else.
    let ovn = model::CloudFeatures::octavia(2, 27, Some("ovn"));
    model::desired(
        &svc_with(&[(a::LB_METHOD, "SOURCE_IP_PORT")]),
        &nodes(3),
        &conf,
        &ovn,
        &env(),
    )
    .expect("ovn takes SOURCE_IP_PORT");
}

#[test]
fn lb_method_on_ovn() {
    let ovn = model::CloudFeatures::octavia(2, 27, Some("OVN"));
    let s = model::desired(&svc_with(&[]), &nodes(3), &config(), &ovn, &env()).expect("ovn");
    assert_eq!(l0(&s).pool.lb_algorithm, LbMethod::SourceIpPort);
    let errs = model::desired(
        &svc_with(&[(a::LB_METHOD, "ROUND_ROBIN")]),
        &nodes(3),
        &config(),
        &ovn,
        &env(),
    )
    .expect_err("ovn rr");
    assert_eq!(errs[0].reason, InvalidReason::Unsupported);
    assert!(errs[0].accepted.contains("SOURCE_IP_PORT"));
}

#[test]
fn proxy_protocol() {
    let s = ok(&[(a::PROXY_PROTOCOL, "true")]);
    assert_eq!(
        (l0(&s).protocol, l0(&s).pool.protocol),
        (ListenerProtocol::Tcp, PoolProtocol::Proxy)
    );
    assert_eq!(s.status.ip_mode, IpMode::Proxy);
    assert_eq!(
        l0(&ok(&[(a::PROXY_PROTOCOL, "v1")])).pool.protocol,
        PoolProtocol::Proxy
    );
    assert_eq!(
        l0(&ok(&[(a::PROXY_PROTOCOL, "V2")])).pool.protocol,
        PoolProtocol::ProxyV2
    );
    bad(&[(a::PROXY_PROTOCOL, "v3")], a::PROXY_PROTOCOL, "v3");
    // "false" is not a way to turn it off: OCCM treats any value as on, we refuse to guess.
    bad(&[(a::PROXY_PROTOCOL, "false")], a::PROXY_PROTOCOL, "false");
    let old = model::CloudFeatures::octavia(2, 21, None);
    let errs = model::desired(
        &svc_with(&[(a::PROXY_PROTOCOL, "v2")]),
        &nodes(3),
        &config(),
        &old,
        &env(),
    )
    .expect_err("2.21");
    assert_eq!(errs[0].reason, InvalidReason::Unsupported);
    // PROXY with x-forwarded-for makes no sense.
    let errs = want(&svc_with(&[
        (a::PROXY_PROTOCOL, "true"),
        (a::X_FORWARDED_FOR, "true"),
    ]))
    .expect_err("conflict");
    assert_eq!(errs[0].reason, InvalidReason::Conflict);
}

#[test]
fn x_forwarded_for() {
    let s = ok(&[(a::X_FORWARDED_FOR, "true")]);
    assert_eq!(
        (l0(&s).protocol, l0(&s).pool.protocol),
        (ListenerProtocol::Http, PoolProtocol::Http)
    );
    assert_eq!(
        l0(&s)
            .insert_headers
            .get("X-Forwarded-For")
            .map(String::as_str),
        Some("true")
    );
    let s = ok(&[(a::X_FORWARDED_FOR, "false")]);
    assert_eq!(l0(&s).protocol, ListenerProtocol::Tcp);
    assert!(l0(&s).insert_headers.is_empty());
    bad(&[(a::X_FORWARDED_FOR, "on")], a::X_FORWARDED_FOR, "on");
}

#[test]
fn listener_timeouts() {
    let s = ok(&[
        (a::TIMEOUT_CLIENT_DATA, "0"),
        (a::TIMEOUT_MEMBER_CONNECT, "31536000000"),
        (a::TIMEOUT_MEMBER_DATA, "1"),
        (a::TIMEOUT_TCP_INSPECT, "100"),
    ]);
    assert_eq!(
        l0(&s).timeouts,
        Timeouts {
            client_data: Some(0),
            member_connect: Some(31536000000),
            member_data: Some(1),
            tcp_inspect: Some(100)
        }
    );
    for key in [
        a::TIMEOUT_CLIENT_DATA,
        a::TIMEOUT_MEMBER_CONNECT,
        a::TIMEOUT_MEMBER_DATA,
        a::TIMEOUT_TCP_INSPECT,
    ] {
        bad(&[(key, "31536000001")], key, "31536000001");
        bad(&[(key, "5s")], key, "5s");
        bad(&[(key, "-1")], key, "-1");
    }
    // Octavia < 2.1: skipped with a Warning, never sent.
    let old = model::CloudFeatures::octavia(2, 0, None);
    let s = model::desired(
        &svc_with(&[(a::TIMEOUT_CLIENT_DATA, "1000")]),
        &nodes(3),
        &config(),
        &old,
        &env(),
    )
    .expect("2.0");
    assert_eq!(l0(&s).timeouts, Timeouts::default());
    assert!(s
        .warnings
        .iter()
        .any(|w| w.reason == model::WarningReason::FeatureUnsupported
            && w.message.contains("timeouts")));
}

#[test]
fn health_monitor() {
    assert!(
        l0(&ok(&[])).pool.monitor.is_none(),
        "create-monitor defaults to false"
    );
    let s = ok(&[
        (a::ENABLE_HEALTH_MONITOR, "true"),
        (a::HEALTH_MONITOR_DELAY, "10"),
        (a::HEALTH_MONITOR_TIMEOUT, "10s"),
        (a::HEALTH_MONITOR_MAX_RETRIES, "10"),
        (a::HEALTH_MONITOR_MAX_RETRIES_DOWN, "1"),
    ]);
    let m = l0(&s).pool.monitor.clone().expect("monitor");
    assert_eq!(
        (
            m.kind,
            m.delay,
            m.timeout,
            m.max_retries,
            m.max_retries_down
        ),
        (MonitorType::Tcp, 10, 10, 10, 1)
    );
    assert_eq!(
        l0(&ok(&[
            (a::ENABLE_HEALTH_MONITOR, "true"),
            (a::HEALTH_MONITOR_DELAY, "1m")
        ]))
        .pool
        .monitor
        .as_ref()
        .map(|m| m.delay),
        Some(60)
    );
    bad(
        &[(a::ENABLE_HEALTH_MONITOR, "maybe")],
        a::ENABLE_HEALTH_MONITOR,
        "maybe",
    );
    bad(
        &[(a::HEALTH_MONITOR_DELAY, "0")],
        a::HEALTH_MONITOR_DELAY,
        "0",
    );
    bad(
        &[(a::HEALTH_MONITOR_DELAY, "86401")],
        a::HEALTH_MONITOR_DELAY,
        "86401",
    );
    bad(
        &[(a::HEALTH_MONITOR_TIMEOUT, "fast")],
        a::HEALTH_MONITOR_TIMEOUT,
        "fast",
    );
    bad(
        &[(a::HEALTH_MONITOR_MAX_RETRIES, "0")],
        a::HEALTH_MONITOR_MAX_RETRIES,
        "0",
    );
    bad(
        &[(a::HEALTH_MONITOR_MAX_RETRIES_DOWN, "11")],
        a::HEALTH_MONITOR_MAX_RETRIES_DOWN,
        "11",
    );
    // timeout above delay cannot work.
    bad(
        &[
            (a::HEALTH_MONITOR_DELAY, "3"),
            (a::HEALTH_MONITOR_TIMEOUT, "4"),
        ],
        a::HEALTH_MONITOR_TIMEOUT,
        "4",
    );
}

#[test]
fn flavor_and_availability_zone() {
    let s = ok(&[(a::FLAVOR_ID, UUID), (a::AVAILABILITY_ZONE, "az-1")]);
    assert_eq!(
        (s.flavor_id.as_deref(), s.availability_zone.as_deref()),
        (Some(UUID), Some("az-1"))
    );
    bad(&[(a::FLAVOR_ID, "small")], a::FLAVOR_ID, "small");
    bad(&[(a::AVAILABILITY_ZONE, "")], a::AVAILABILITY_ZONE, "");
    let old = model::CloudFeatures::octavia(2, 5, None);
    let s = model::desired(
        &svc_with(&[(a::FLAVOR_ID, UUID), (a::AVAILABILITY_ZONE, "az-1")]),
        &nodes(3),
        &config(),
        &old,
        &env(),
    )
    .expect("2.5");
    assert_eq!((s.flavor_id, s.availability_zone), (None, None));
    assert_eq!(s.warnings.len(), 2);
}

#[test]
fn default_tls_container_ref() {
    let r = "https://barbican.example.com:9311/v1/containers/2a4c";
    let s = ok(&[(a::DEFAULT_TLS_CONTAINER_REF, r)]);
    assert_eq!(l0(&s).protocol, ListenerProtocol::TerminatedHttps);
    assert_eq!(l0(&s).pool.protocol, PoolProtocol::Http);
    assert_eq!(l0(&s).default_tls_container_ref.as_deref(), Some(r));
    bad(
        &[(a::DEFAULT_TLS_CONTAINER_REF, " ")],
        a::DEFAULT_TLS_CONTAINER_REF,
        "",
    );
    let errs = want(&svc_with(&[
        (a::DEFAULT_TLS_CONTAINER_REF, r),
        (a::PROXY_PROTOCOL, "true"),
    ]))
    .expect_err("conflict");
    assert_eq!(errs[0].reason, InvalidReason::Conflict);
}

#[test]
fn load_balancer_id_and_address() {
    assert_eq!(
        ok(&[(a::LOAD_BALANCER_ID, UUID)]).existing_lb_id.as_deref(),
        Some(UUID)
    );
    bad(
        &[(a::LOAD_BALANCER_ID, "my-lb")],
        a::LOAD_BALANCER_ID,
        "my-lb",
    );
    // load-balancer-address is written by the controller; it is validated but selects nothing.
    assert!(matches!(
        ok(&[(a::LOAD_BALANCER_ADDRESS, "203.0.113.5")]).floating_ip,
        FipIntent::New(_)
    ));
    bad(
        &[(a::LOAD_BALANCER_ADDRESS, "203.0.113")],
        a::LOAD_BALANCER_ADDRESS,
        "203.0.113",
    );
}

#[test]
fn hostname() {
    let s = ok(&[(a::HOSTNAME, "Shop.Example.com")]);
    assert_eq!(
        s.status.source,
        IngressSource::Hostname("shop.example.com".into())
    );
    bad(
        &[(a::HOSTNAME, "shop_example.com")],
        a::HOSTNAME,
        "shop_example.com",
    );
    bad(
        &[(a::HOSTNAME, "-shop.example.com")],
        a::HOSTNAME,
        "-shop.example.com",
    );
    let long = format!("{}.com", "a".repeat(64));
    bad(&[(a::HOSTNAME, &long)], a::HOSTNAME, &long);
}

#[test]
fn node_selector() {
    let mut ns = nodes(3);
    ns[1].metadata.labels = Some([("role".to_string(), "edge".to_string())].into());
    ns[2].metadata.labels = Some(
        [
            ("role".to_string(), "core".to_string()),
            ("gpu".to_string(), String::new()),
        ]
        .into(),
    );
    let run = |sel: &str| {
        model::desired(
            &svc_with(&[(a::NODE_SELECTOR, sel)]),
            &ns,
            &config(),
            &features(),
            &env(),
        )
        .map(|s| {
            s.listeners[0]
                .pool
                .members
                .initial()
                .iter()
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(run("role=edge").expect("ok"), vec!["node-2"]);
    assert_eq!(run("role").expect("ok"), vec!["node-2", "node-3"]);
    assert_eq!(run("role=core, gpu").expect("ok"), vec!["node-3"]);
    assert_eq!(run("role=none").expect("ok"), Vec::<String>::new());
    bad(
        &[(a::NODE_SELECTOR, "role=edge,,x")],
        a::NODE_SELECTOR,
        "role=edge,,x",
    );
    bad(&[(a::NODE_SELECTOR, "=edge")], a::NODE_SELECTOR, "=edge");
}

#[test]
fn source_ranges_annotation_and_spec() {
    let s = ok(&[(a::SOURCE_RANGES, "10.0.0.0/8, 192.168.0.0/16")]);
    assert_eq!(l0(&s).allowed_cidrs, vec!["10.0.0.0/8", "192.168.0.0/16"]);
    bad(
        &[(a::SOURCE_RANGES, "10.0.0.1/8")],
        a::SOURCE_RANGES,
        "10.0.0.1/8",
    );
    bad(
        &[(a::SOURCE_RANGES, "everyone")],
        a::SOURCE_RANGES,
        "everyone",
    );
    // spec.loadBalancerSourceRanges wins over the annotation.
    let mut svc = svc_with(&[(a::SOURCE_RANGES, "10.0.0.0/8")]);
    svc.spec.as_mut().expect("spec").load_balancer_source_ranges =
        Some(vec!["172.16.0.0/12".into()]);
    assert_eq!(
        l0(&want(&svc).expect("ok")).allowed_cidrs,
        vec!["172.16.0.0/12"]
    );
    // Only IPv6 ranges on an IPv4 Service would silently open it to everyone: refused.
    let mut svc = svc_with(&[(a::SOURCE_RANGES, "2001:db8::/32")]);
    svc.spec.as_mut().expect("spec").ip_families = Some(vec!["IPv4".into()]);
    assert_eq!(
        want(&svc).expect_err("family")[0].reason,
        InvalidReason::Conflict
    );
}

#[test]
fn source_ranges_dual_stack_keep_the_vip_family_for_allowed_cidrs() {
    let mut svc = svc_with(&[(a::SOURCE_RANGES, "10.0.0.0/8,2001:db8::/32")]);
    svc.spec.as_mut().expect("spec").ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
    let s = want(&svc).expect("ok");
    assert_eq!(l0(&s).allowed_cidrs, vec!["10.0.0.0/8"]);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.reason == model::WarningReason::SourceRangeIgnored));
    let mut svc = svc_with(&[(a::SOURCE_RANGES, "2001:db8::/32")]);
    svc.spec.as_mut().expect("spec").ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
    assert_eq!(
        want(&svc).expect_err("would open v4")[0].reason,
        InvalidReason::Conflict
    );
}

#[test]
fn recreate_on_immutable_change() {
    assert!(ok(&[(a::RECREATE_ON_IMMUTABLE_CHANGE, "true")]).recreate_on_immutable_change);
    assert!(!ok(&[]).recreate_on_immutable_change);
    bad(
        &[(a::RECREATE_ON_IMMUTABLE_CHANGE, "please")],
        a::RECREATE_ON_IMMUTABLE_CHANGE,
        "please",
    );
}

#[test]
fn unknown_annotation_of_ours_is_a_warning() {
    let s = ok(&[("loadbalancer.openstack.org/keep-floating-ip", "true")]);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.reason == model::WarningReason::UnknownAnnotation
            && w.message.contains("keep-floating-ip")));
    // Other prefixes are not ours to judge.
    assert!(ok(&[("example.com/anything", "x")]).warnings.is_empty());
}

#[test]
fn all_errors_are_reported_at_once() {
    let errs = want(&svc_with(&[
        (a::LB_METHOD, "x"),
        (a::KEEP_FLOATINGIP, "x"),
        (a::CONNECTION_LIMIT, "x"),
    ]))
    .expect_err("3");
    assert_eq!(errs.len(), 3);
}

#[test]
fn session_affinity() {
    let mut svc = svc_with(&[]);
    svc.spec.as_mut().expect("spec").session_affinity = Some("ClientIP".into());
    assert_eq!(
        l0(&want(&svc).expect("ok")).pool.session_persistence,
        Some(Persistence {
            kind: "SOURCE_IP".into()
        })
    );
    svc.spec.as_mut().expect("spec").session_affinity = Some("None".into());
    assert_eq!(l0(&want(&svc).expect("ok")).pool.session_persistence, None);
}

#[test]
fn external_traffic_policy_local() {
    let mut svc = svc_with(&[]);
    let spec = svc.spec.as_mut().expect("spec");
    spec.external_traffic_policy = Some("Local".into());
    spec.health_check_node_port = Some(31999);
    let s = want(&svc).expect("ok");
    let m = l0(&s).pool.monitor.clone().expect("always a monitor");
    assert_eq!(
        (m.kind, m.http_method.as_deref(), m.url_path.as_deref()),
        (MonitorType::Http, Some("GET"), Some("/healthz"))
    );
    assert!(l0(&s)
        .pool
        .members
        .initial()
        .iter()
        .all(|m| m.monitor_port == Some(31999)));
    svc.spec.as_mut().expect("spec").health_check_node_port = None;
    assert_eq!(
        want(&svc).expect_err("no hc port")[0].field,
        "spec.healthCheckNodePort"
    );
}

#[test]
fn protocols() {
    let svc = service(
        r#"
metadata: {name: mix, namespace: x}
spec:
  ports:
  - {port: 53, protocol: UDP, nodePort: 30053}
  - {port: 53, protocol: TCP, nodePort: 30054}
  - {port: 2905, protocol: SCTP, nodePort: 32905}
"#,
    );
    let s = want(&svc).expect("ok");
    let protos: Vec<_> = s
        .listeners
        .iter()
        .map(|l| (l.protocol, l.pool.protocol))
        .collect();
    assert_eq!(
        protos,
        vec![
            (ListenerProtocol::Udp, PoolProtocol::Udp),
            (ListenerProtocol::Tcp, PoolProtocol::Tcp),
            (ListenerProtocol::Sctp, PoolProtocol::Sctp)
        ]
    );
    let names: Vec<_> = s.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names[2], "listener_2_kube_service_kubernetes_x_mix");
    let dup = service("metadata: {name: d}\nspec:\n  ports: [{port: 80, nodePort: 30001}, {port: 80, nodePort: 30002}]\n");
    assert_eq!(
        want(&dup).expect_err("dup")[0].reason,
        InvalidReason::Conflict
    );
    let empty = service("metadata: {name: e}\nspec: {ports: []}\n");
    assert_eq!(want(&empty).expect_err("no ports")[0].field, "spec.ports");
}

#[test]
fn proxy_on_udp_is_a_conflict() {
    let mut svc = svc_with(&[(a::PROXY_PROTOCOL, "true")]);
    svc.spec
        .as_mut()
        .expect("spec")
        .ports
        .as_mut()
        .expect("ports")[0]
        .protocol = Some("UDP".into());
    assert_eq!(
        want(&svc).expect_err("udp proxy")[0].reason,
        InvalidReason::Conflict
    );
}

#[test]
fn load_balancer_ip() {
    let mut svc = svc_with(&[]);
    svc.spec.as_mut().expect("spec").load_balancer_ip = Some("198.51.100.7".into());
    assert!(
        matches!(want(&svc).expect("ok").floating_ip, FipIntent::ByAddress { address, .. } if address.to_string() == "198.51.100.7")
    );
    svc.spec.as_mut().expect("spec").load_balancer_ip = Some("198.51.100".into());
    assert_eq!(
        want(&svc).expect_err("bad ip")[0].field,
        "spec.loadBalancerIP"
    );
}

#[test]
fn names_and_tags() {
    let s = ok(&[]);
    assert_eq!(s.name, "kube_service_kubernetes_shop_web");
    assert_eq!(
        s.tags,
        vec![
            "kube_service_kubernetes_shop_web".to_string(),
            format!("kube-cluster-uid={CLUSTER_UID}")
        ]
    );
    assert_eq!(l0(&s).pool.name, "pool_0_kube_service_kubernetes_shop_web");
    assert_eq!(
        s.fip_description,
        "Floating IP for Kubernetes external service shop/web from cluster kubernetes"
    );
    // No tags before Octavia 2.5: ownership by name and description only.
    let old = model::CloudFeatures::octavia(2, 4, None);
    let s = model::desired(&svc_with(&[]), &nodes(3), &config(), &old, &env()).expect("2.4");
    assert!(s.tags.is_empty() && l0(&s).tags.is_empty());
}
